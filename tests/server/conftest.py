"""A real `codelstm serve` process on loopback, serving the tiny test model."""

from __future__ import annotations

import httpx
import pytest
import torch

from codelstm.model import load_checkpoint
from codelstm.model.engine import InferenceEngine
from codelstm.model.network import native_bfloat16
from tests.conftest import running_server

API_KEY = "test-key"
ADMIN_KEY = "admin-key"


@pytest.fixture(scope="module")
def server(tiny_model):
    with running_server(tiny_model, api_keys=API_KEY, admin_key=ADMIN_KEY, max_body_bytes="65536") as url:
        yield url


@pytest.fixture(scope="module")
def engine(tiny_model) -> InferenceEngine:
    """The engine as the server builds it: bfloat16 where the CPU has it (rows independent of batch-mates)."""
    model, _ = load_checkpoint(tiny_model)
    if native_bfloat16():
        model = model.to(torch.bfloat16)
    return InferenceEngine(model, cache=None, step_onednn=model.dtype == torch.bfloat16, prefill_wait_s=0)


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
