"""The explorer's per-service memory: trace cache and one-at-a-time training."""

from __future__ import annotations

import pytest
import torch

from codelstm.explorer.workbench import TrainingBusy, Workbench
from codelstm.model import ByteLM, ModelConfig


def model(seed: int) -> ByteLM:
    torch.manual_seed(seed)
    return ByteLM(ModelConfig(embed_dim=8, hidden_size=8, num_layers=1)).eval()


def test_traces_are_cached_per_model_and_text():
    wb = Workbench(cache_size=2)
    a, b = model(0), model(1)
    first = wb.trace(a, b"x = 1\n")
    assert wb.trace(a, b"x = 1\n") is first  # the page's next click costs nothing
    assert wb.trace(b, b"x = 1\n") is not first  # another model reads it afresh
    assert not torch.equal(wb.trace(b, b"x = 1\n").layers[0]["h"], first.layers[0]["h"])
    wb.trace(a, b"y = 2\n")
    assert wb.trace(a, b"x = 1\n") is not first  # evicted: at most cache_size traces are kept


def test_training_is_one_at_a_time():
    wb = Workbench()
    with wb._training:  # another request is training
        with pytest.raises(TrainingBusy):
            wb.train("counting", steps=10)
    assert "counting" not in wb.trained
    with pytest.raises(KeyError, match="unknown task"):
        wb.train("sorting")
