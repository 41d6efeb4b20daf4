"""Assembles the FastAPI app: settings, service, routers, error handlers, limits."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from codelstm import __version__
from codelstm.explorer.workbench import Workbench
from codelstm.server.errors import install_error_handlers
from codelstm.server.limits import BodySizeLimit
from codelstm.server.logs import RequestLog
from codelstm.server.metrics import ServiceMetrics
from codelstm.model.context import ContextConfig
from codelstm.model.workspaces import WorkspaceStore
from codelstm.server.routers import complete, explore, health, model, openai, workspaces
from codelstm.server.service import CompletionService
from codelstm.server.settings import ServerSettings


class CodelstmApp(FastAPI):
    def build_middleware_stack(self):
        """RequestLog outside even Starlette's ServerErrorMiddleware (which add_middleware cannot reach): an
        unexpected 500 also carries X-Request-ID and gets its access line."""
        return RequestLog(super().build_middleware_stack())


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    settings = settings or ServerSettings()
    metrics = ServiceMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service = CompletionService(settings, metrics)
        await asyncio.to_thread(service.start)
        app.state.service = service
        try:
            yield
        finally:
            await asyncio.to_thread(service.stop, settings.shutdown_grace_s)
            app.state.workbench.close()

    app = CodelstmApp(title="codelstm", version=__version__, lifespan=lifespan,
                      description="Code completion from a byte-level LSTM (SPEC section 5).")
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.service = None
    app.state.workbench = Workbench(settings.explore_cache_mb << 20)  # the explorer's task models and traces
    app.state.workspaces = WorkspaceStore(ContextConfig(), settings.workspace_mb << 20, settings.workspace_max_mb << 20)
    install_error_handlers(app)
    app.include_router(complete.router)
    app.include_router(openai.router)
    app.include_router(model.router)
    app.include_router(health.router)
    app.include_router(workspaces.router)
    app.include_router(explore.router)
    app.include_router(explore.page)
    app.mount("/explore/static", StaticFiles(directory=explore.STATIC_DIR), name="explore-static")
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    return app
