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
    """Ready for new work: the model is loaded, the worker thread is alive, and the server is not draining."""
    service = request.app.state.service
    why = "the model is not loaded yet" if service is None else service.readiness()
    if why is not None:
        return error_response(503, "not_ready", why, {"Retry-After": "1"})
    return {"status": "ready", "model": service.loaded.name}


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text format."""
    service = request.app.state.service
    if service is not None and service.batcher is not None:
        request.app.state.metrics.queue_depth.set(service.batcher.depth)
        request.app.state.metrics.worker_restarts.set(service.batcher.restarts)
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
