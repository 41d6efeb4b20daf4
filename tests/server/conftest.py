"""A real `codelstm serve` process on loopback, serving the tiny test model."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager

import httpx
import pytest

from tests.conftest import ROOT, free_port, running_server

API_KEY = "test-key"
ADMIN_KEY = "admin-key"


@pytest.fixture(scope="module")
def server(tiny_model):
    with running_server(tiny_model, api_keys=API_KEY, admin_key=ADMIN_KEY, max_body_bytes="65536") as url:
        yield url


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30) as c:
        yield c


def metric(url: str, name: str, labels: str = "") -> float:
    """One sample of the server's /metrics (0 when the series does not exist yet)."""
    wanted = f"{name}{{{labels}}}" if labels else name
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def big_document(size: int) -> str:
    """Python source of about `size` bytes, like the tiny model's corpus (it reads ~100 KB/s on the 2-core VM)."""
    block = "".join(f"def function_{j}(value):\n    return value + {j}\n\n" for j in range(7))
    text = "".join(f"# module {i}\n\n{block}" for i in range(size // len(block) + 1))
    return text[:size] + "\ndef function_3(value):\n    return "


@contextmanager
def server_process(model, **env: str):
    """Like tests.conftest.running_server, but yields (url, process): for tests that signal the server."""
    port = free_port()
    environ = {**os.environ, "CODELSTM_THREADS": "1", **{f"CODELSTM_{k.upper()}": v for k, v in env.items()}}
    proc = subprocess.Popen([sys.executable, "-m", "codelstm.cli", "serve", "--model", str(model), "--port", str(port),
                             "--log-level", "warning"], cwd=ROOT, env=environ,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            assert proc.poll() is None, f"server exited: {proc.stdout.read()}"
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError("server did not become ready")
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
