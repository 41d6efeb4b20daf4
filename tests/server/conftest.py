"""A real `codelstm serve` process on loopback, serving the tiny test model."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT

API_KEY = "test-key"
ADMIN_KEY = "admin-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(model: Path, **env: str):
    port = free_port()
    environ = {**os.environ, "CODELSTM_THREADS": "1", **{f"CODELSTM_{k.upper()}": v for k, v in env.items()}}
    proc = subprocess.Popen([sys.executable, "-m", "codelstm.cli", "serve", "--model", str(model), "--port", str(port),
                             "--log-level", "warning"], cwd=ROOT, env=environ,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {proc.stdout.read()}")
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError("server did not become ready")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def server(tiny_model):
    with running_server(tiny_model, api_keys=API_KEY, admin_key=ADMIN_KEY, max_body_bytes="65536") as url:
        yield url


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30) as c:
        yield c
