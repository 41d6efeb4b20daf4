"""Graceful shutdown: on SIGTERM (or Ctrl-C) drain first, then let uvicorn stop.

Draining means: new work is answered 503 with `Retry-After` and `/readyz` says 503 (a balancer moves
traffic away), while requests already in flight finish, for up to CODELSTM_SHUTDOWN_GRACE_S; whatever
is still running then is answered 503 too, never a bare 500. A second signal stops at once.
"""

from __future__ import annotations

import logging
import threading

import uvicorn
from fastapi import FastAPI

log = logging.getLogger("codelstm.server")


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI, grace_s: float) -> None:
        super().__init__(config)
        self.fastapi_app = app
        self.grace_s = grace_s
        self._draining = False

    def handle_exit(self, sig, frame) -> None:
        service = self.fastapi_app.state.service
        if self._draining or service is None:
            return super().handle_exit(sig, frame)
        self._draining = True
        service.drain()
        log.warning("draining: finishing requests in flight for up to %.1f s before shutting down", self.grace_s)
        threading.Thread(target=self._drain_then_exit, args=(service, sig, frame), name="codelstm-drain",
                         daemon=True).start()

    def _drain_then_exit(self, service, sig, frame) -> None:
        service.stop(self.grace_s)
        super().handle_exit(sig, frame)


def serve(app: FastAPI, host: str, port: int, grace_s: float, log_level: str = "info") -> None:
    """uvicorn.run with the drain in front of its shutdown (HTTP requests other than completions, such as
    an explorer training run, get the same grace from uvicorn before they are cut)."""
    # log_config=None: uvicorn's loggers go through the handler `serve` set up (codelstm.server.logs);
    # access_log=False: RequestLog writes the access lines.
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=grace_s + 1,
                            log_config=None, access_log=False)
    DrainingServer(config, app, grace_s).run()
