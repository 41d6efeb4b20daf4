"""Activation tracing reads the real model: h and c are model.step's, the derived gates reproduce them."""

from __future__ import annotations

import pytest
import torch

from codelstm.model import ByteLM, ModelConfig, load_checkpoint
from codelstm.model.activations import GateMismatch, TraceError, check_lstm_cell, trace
from codelstm.model.generate import prefill
from codelstm.model.quantize import quantize_int8
from codelstm.paths import DEFAULT_MODEL

CODE = "def area(r):\n    if r > 0:\n        return 3.14 * r * r  # é\n    return 0\n".encode()


def small_model(cell: str = "lstm", seed: int = 0) -> ByteLM:
    torch.manual_seed(seed)
    return ByteLM(ModelConfig(cell=cell, embed_dim=8, hidden_size=24, num_layers=2)).eval()


@pytest.fixture(scope="module")
def default_model() -> ByteLM:
    return load_checkpoint(DEFAULT_MODEL)[0]


def stepped(model: ByteLM, data: bytes) -> list[tuple[torch.Tensor, ...]]:
    """States after each byte of data, read after a NUL with model.step, as the server's batch-1 steps do
    (with oneDNN off: its kernels round differently in the last bit)."""
    state, out = None, []
    with torch.no_grad(), torch.backends.mkldnn.flags(enabled=False):
        for b in bytes([0]) + data:
            _, state = model.step(torch.tensor([b]), state)
            out.append(state)
    return out[1:]


@pytest.mark.parametrize("which", ["small", "default"])
def test_h_and_c_are_model_steps_states(which, default_model):
    model = small_model() if which == "small" else default_model
    result = trace(model, CODE)
    states = stepped(model, CODE)
    assert result.num_layers == model.config.num_layers and len(result.layers[0]["h"]) == len(CODE)
    for t, (h, c) in enumerate(states):
        for k in range(model.config.num_layers):
            assert torch.equal(result.layers[k]["h"][t], h[k, 0]), (t, k)
            assert torch.equal(result.layers[k]["c"][t], c[k, 0]), (t, k)
    # and the sequence API that serves completions ends in the same state
    final, _ = prefill(model, CODE)
    torch.testing.assert_close(result.layers[-1]["h"][-1], final[0][-1, 0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(result.layers[-1]["c"][-1], final[1][-1, 0], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("which", ["small", "default"])
def test_gates_reproduce_the_cell(which, default_model):
    model = small_model() if which == "small" else default_model
    result = trace(model, CODE)
    assert result.max_gate_error < 1e-5
    for layer in result.layers:
        i, f, g, o = (layer[q] for q in "ifgo")
        assert all(((0 <= x) & (x <= 1)).all() for x in (i, f, o))  # saturated gates reach 0.0 or 1.0 in float32
        assert (g.abs() <= 1).all()
        assert (layer["h"] - o * torch.tanh(layer["c"])).abs().max() < 1e-5
        # byte t's cell follows from byte t-1's (byte 0's from the NUL's, which is not reported);
        # relative to the magnitudes involved: the default model's cells reach the hundreds
        c, c_prev = layer["c"][1:], layer["c"][:-1]
        assert ((c - (f[1:] * c_prev + i[1:] * g[1:])).abs() / (1 + c.abs() + c_prev.abs())).max() < 1e-5


def test_the_check_fails_on_a_wrong_cell():
    """The verification is what keeps the derived gates honest: a state that does not follow from them fails."""
    model = small_model()
    layer = trace(model, CODE).layers[0]
    i, f, g, o, c, h = (layer[q][1:] for q in "ifgoch")
    c_prev = layer["c"][:-1]
    assert check_lstm_cell(0, i, f, g, o, c, c_prev, h, 1e-4) < 1e-5
    with pytest.raises(GateMismatch, match="layer 0"):
        check_lstm_cell(0, i, f, o, g, c, c_prev, h, 1e-4)  # candidate and output gate swapped
    with pytest.raises(GateMismatch):
        check_lstm_cell(0, i, f, g, o, c + 0.01, c_prev, h, 1e-4)


def test_nul_starts_a_fresh_document():
    model = small_model()
    joined = trace(model, b"x = 1\n\0y = 2\n")
    alone = trace(model, b"y = 2\n")
    start = len(b"x = 1\n\0")
    for q in ("h", "c", "i", "f", "o", "g"):
        torch.testing.assert_close(joined.layers[1][q][start:], alone.layers[1][q], rtol=0, atol=1e-6)


def test_gru_has_h_only():
    model = small_model("gru")
    result = trace(model, CODE)
    assert result.quantities == ("h",) and set(result.layers[0]) == {"h"}
    for t, (h,) in enumerate(stepped(model, CODE)):
        assert torch.equal(result.layers[1]["h"][t], h[1, 0])


def test_quantised_model_and_empty_text_are_refused():
    with pytest.raises(TraceError, match="quantised"):
        trace(quantize_int8(small_model()), CODE)
    with pytest.raises(TraceError, match="empty"):
        trace(small_model(), b"")
