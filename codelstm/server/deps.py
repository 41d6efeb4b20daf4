"""Shared objects for the routers, injected with Depends so tests can override them.

The dependencies are `async def` although none awaits: FastAPI runs a plain `def` dependency in its thread
pool, a hop to another thread and back for each of them on every request, for work of a few microseconds
that never blocks."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from codelstm.server.errors import APIError
from codelstm.server.service import CompletionService
from codelstm.server.settings import ServerSettings


async def get_settings(request: Request) -> ServerSettings:
    return request.app.state.settings


async def get_service(request: Request) -> CompletionService:
    service = request.app.state.service
    if service is None or not service.loaded_ok:
        raise APIError(503, "not_ready", "the model is not loaded yet", {"Retry-After": "1"})
    if service.draining:
        raise APIError(503, "shutting_down", "the server is shutting down; retry (on another replica)",
                       {"Retry-After": "1"})
    return service


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-api-key")


def client_key(request: Request) -> str | None:
    """The key the request came with: what scopes its documents (one user's request never supersedes another's)."""
    return _bearer(request)


def _matches(key: str | None, allowed: list[str]) -> bool:
    return key is not None and any(hmac.compare_digest(key, k) for k in allowed)


async def require_api_key(request: Request, settings: Annotated[ServerSettings, Depends(get_settings)]) -> None:
    keys = list(settings.api_keys) + ([settings.admin_key] if settings.admin_key else [])
    if settings.api_keys and not _matches(_bearer(request), keys):
        raise APIError(401, "unauthorized", "missing or invalid API key", {"WWW-Authenticate": "Bearer"})


def check_admin_key(request: Request, settings: ServerSettings) -> None:
    """Raises unless the request carries the admin key."""
    if not settings.admin_key:
        raise APIError(403, "forbidden", "this endpoint needs the admin key, and none is set: set CODELSTM_ADMIN_KEY")
    if not _matches(_bearer(request), [settings.admin_key]):
        raise APIError(401, "unauthorized", "missing or invalid admin key", {"WWW-Authenticate": "Bearer"})


def check_trainer(request: Request, settings: ServerSettings) -> None:
    """Work that burns CPU on demand (training the explorer's task models) is an admin's once anyone but this
    machine can reach the service or keys are configured; on a loopback server without keys it is open."""
    if settings.api_keys or not settings.loopback:
        check_admin_key(request, settings)


async def require_admin_key(request: Request, settings: Annotated[ServerSettings, Depends(get_settings)]) -> None:
    check_admin_key(request, settings)


async def require_trainer(request: Request, settings: Annotated[ServerSettings, Depends(get_settings)]) -> None:
    check_trainer(request, settings)


SettingsDep = Annotated[ServerSettings, Depends(get_settings)]
ServiceDep = Annotated[CompletionService, Depends(get_service)]
ApiKey = Depends(require_api_key)
AdminKey = Depends(require_admin_key)
TrainerKey = Depends(require_trainer)
