"""Model information and hot reload."""

from __future__ import annotations

from fastapi import APIRouter

from codelstm.server.deps import AdminKey, ApiKey, ServiceDep
from codelstm.server.schemas import ReloadRequest

router = APIRouter(prefix="/v1/model", tags=["model"])


@router.get("", dependencies=[ApiKey])
async def model_info(service: ServiceDep) -> dict:
    """Name, architecture, parameter count and training metadata of the model being served."""
    return service.describe()


@router.post("/reload", dependencies=[AdminKey])
async def reload(body: ReloadRequest, service: ServiceDep) -> dict:
    """Load another checkpoint without dropping requests (admin key)."""
    await service.reload(body.path)
    return {"status": "reloaded", **service.describe()}
