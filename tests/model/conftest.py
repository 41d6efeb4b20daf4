"""Fixtures of the model tests that search with the shipped model."""

from __future__ import annotations

import pytest

from codelstm.model import load_checkpoint
from codelstm.model.network import torch_threads
from codelstm.paths import DEFAULT_MODEL


@pytest.fixture
def one_thread():
    """A few beams step fastest on one thread, as the server steps them (bench/step_time.py)."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def bundled():
    """The shipped default model: real identifiers, real lines."""
    model, _ = load_checkpoint(DEFAULT_MODEL)
    return model.eval()
