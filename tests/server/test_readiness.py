"""/readyz follows the worker: 503 while it is dead, ready again once the supervisor restarted it.

In-process (the worker thread cannot be killed from outside a server process); the model, service, batcher
and routes are the real ones, only the fault is injected: an engine whose round kills its thread."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from codelstm.server.main import create_app
from codelstm.server.settings import ServerSettings


class _Killer:
    """Swapped in as the engine: its first round raises SystemExit, which ends the worker thread."""

    name = "killer"

    def start(self, request):
        return self

    def iterate(self, jobs):
        raise SystemExit("injected")


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_readyz_is_503_while_the_worker_is_dead_and_200_after_restart(tiny_model):
    app = create_app(ServerSettings(model_path=tiny_model, threads=1))
    with TestClient(app) as client:
        assert client.get("/readyz").status_code == 200
        batcher = app.state.service.batcher
        real = batcher.engine
        batcher.swap_engine(_Killer())
        r = client.post("/v1/complete", json={"prefix": "def f"})
        assert r.status_code == 500 and r.json()["error"]["type"] == "internal_error"  # the one request lost
        batcher.swap_engine(real)
        down = client.get("/readyz")
        assert down.status_code == 503 and "worker" in down.json()["error"]["message"]
        deadline = time.monotonic() + 10
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert client.get("/readyz").status_code == 200 and batcher.restarts == 1
        assert client.post("/v1/complete", json={"prefix": "def f"}).status_code == 200
        assert "codelstm_worker_restarts 1.0" in client.get("/metrics").text
