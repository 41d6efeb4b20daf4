"""Shared objects for the routers, injected with Depends so tests can override them."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from codelstm.server.errors import APIError
from codelstm.server.service import CompletionService
from codelstm.server.settings import ServerSettings


def get_settings(request: Request) -> ServerSettings:
    return request.app.state.settings


def get_service(request: Request) -> CompletionService:
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


def require_api_key(request: Request, settings: Annotated[ServerSettings, Depends(get_settings)]) -> None:
    keys = list(settings.api_keys) + ([settings.admin_key] if settings.admin_key else [])
    if settings.api_keys and not _matches(_bearer(request), keys):
        raise APIError(401, "unauthorized", "missing or invalid API key", {"WWW-Authenticate": "Bearer"})


def require_admin_key(request: Request, settings: Annotated[ServerSettings, Depends(get_settings)]) -> None:
    if not settings.admin_key:
        raise APIError(403, "forbidden", "this endpoint needs the admin key, and none is set: set CODELSTM_ADMIN_KEY")
    if not _matches(_bearer(request), [settings.admin_key]):
        raise APIError(401, "unauthorized", "missing or invalid admin key", {"WWW-Authenticate": "Bearer"})


def require_trainer(request: Request, settings: Annotated[ServerSettings, Depends(get_settings)]) -> None:
    """Work that burns CPU on demand (training the explorer's task models) is an admin's once anyone but this
    machine can reach the service or keys are configured; on a loopback server without keys it is open."""
    if settings.api_keys or not settings.loopback:
        require_admin_key(request, settings)


SettingsDep = Annotated[ServerSettings, Depends(get_settings)]
ServiceDep = Annotated[CompletionService, Depends(get_service)]
ApiKey = Depends(require_api_key)
AdminKey = Depends(require_admin_key)
TrainerKey = Depends(require_trainer)
