"""One real `codelstm serve` of the bundled default model for the explorer's HTTP and browser tests, and the
counting-experiment model trained once through its endpoint (package scope: both are shared by the modules)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from codelstm.paths import DEFAULT_MODEL
from tests.conftest import running_server

API_KEY = "explore-key"
ADMIN_KEY = "explore-admin"  # training task models burns CPU: an admin's, once keys are configured
MAX_CHARS = 4096
DATA = Path(__file__).resolve().parent / "test_data"
PYTHON_FILE = DATA / "inventory.py"


@pytest.fixture(scope="package")
def server():
    with running_server(DEFAULT_MODEL, api_keys=API_KEY, admin_key=ADMIN_KEY, explore_max_chars=str(MAX_CHARS)) as url:
        yield url


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=120) as c:
        yield c


@pytest.fixture(scope="package")
def counting(server) -> dict:
    """The counting experiment trained by the service itself (POST /v1/explore/tasks/counting/train)."""
    r = httpx.post(f"{server}/v1/explore/tasks/counting/train", json={}, timeout=300,
                   headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert r.status_code == 200, r.text
    return r.json()
