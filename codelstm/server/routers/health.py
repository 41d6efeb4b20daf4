"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from codelstm.server.errors import error_response

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request):
    """The model is loaded and the worker runs."""
    service = request.app.state.service
    if service is None or not service.ready:
        return error_response(503, "not_ready", "the model is not loaded yet", {"Retry-After": "1"})
    return {"status": "ready", "model": service.loaded.name}


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text format."""
    service = request.app.state.service
    if service is not None and service.batcher is not None:
        request.app.state.metrics.queue_depth.set(service.batcher.depth)
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
