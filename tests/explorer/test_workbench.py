"""The explorer's per-service memory: trace cache and one-at-a-time training."""

from __future__ import annotations

import pytest
import torch

from codelstm.explorer.workbench import TrainingBusy, Workbench, trace_nbytes
from codelstm.model import ByteLM, ModelConfig


def model(seed: int) -> ByteLM:
    torch.manual_seed(seed)
    return ByteLM(ModelConfig(embed_dim=8, hidden_size=8, num_layers=1)).eval()


def test_traces_are_cached_per_model_and_text_within_a_byte_budget():
    a, b = model(0), model(1)
    size = trace_nbytes(Workbench().trace(a, b"x = 1\n"))  # 6 bytes x 6 quantities x 8 units x 4 bytes
    assert size == 6 * 6 * 8 * 4
    wb = Workbench(budget_bytes=2 * size)  # room for two such traces
    first = wb.trace(a, b"x = 1\n")
    assert wb.trace(a, b"x = 1\n") is first  # the page's next click costs nothing
    assert wb.trace(b, b"x = 1\n") is not first  # another model reads it afresh
    assert not torch.equal(wb.trace(b, b"x = 1\n").layers[0]["h"], first.layers[0]["h"])
    assert wb.nbytes == 2 * size and len(wb) == 2
    wb.trace(a, b"y = 2\n")
    assert wb.nbytes <= wb.budget and len(wb) == 2
    assert wb.trace(a, b"x = 1\n") is not first  # evicted: the least recently used went first


def test_a_trace_over_the_budget_is_not_kept():
    wb = Workbench(budget_bytes=100)
    wb.trace(model(0), b"x = 1\n")
    assert len(wb) == 0 and wb.nbytes == 0


def test_training_is_one_at_a_time():
    wb = Workbench()
    with wb._training:  # another request is training
        with pytest.raises(TrainingBusy):
            wb.train("counting", steps=10)
    assert "counting" not in wb.trained
    with pytest.raises(KeyError, match="unknown task"):
        wb.train("sorting")


def test_tracing_and_training_never_flip_this_process_onednn_switch():
    """The serving worker owns the process-wide oneDNN switch: a trace (which steps with it off) and a
    training run (on, and one thread) happen in child processes, so the switch never moves here."""
    import threading

    wb = Workbench()
    before = torch.backends.mkldnn.enabled
    seen: set = set()
    done = threading.Event()

    def watch():
        while not done.is_set():
            seen.add(torch.backends.mkldnn.enabled)

    torch.backends.mkldnn.enabled = True  # as during a serving prefix read; a trace in this process sets False
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = wb.trace(model(0), b"def f(x):\n    return x\n" * 200)
        trained = wb.train("state", steps=10)
    finally:
        done.set()
        watcher.join()
        wb.close()
        torch.backends.mkldnn.enabled = before
    assert result.layers[0]["h"].shape == (len(b"def f(x):\n    return x\n") * 200, 8) and trained.steps == 10
    assert seen == {True}
