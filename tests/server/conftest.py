"""A real `codelstm serve` process on loopback, serving the tiny test model."""

from __future__ import annotations


import httpx
import pytest

from tests.conftest import running_server

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
