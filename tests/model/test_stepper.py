"""The written-out search step (`LstmStepper`) computes what `ByteLM.step` computes, and the engine uses it."""

from __future__ import annotations

import copy

import pytest
import torch

from codelstm.model.config import ModelConfig
from codelstm.model.engine import InferenceEngine
from codelstm.model.network import ByteLM, use_onednn
from codelstm.model.quantize import quantize_int8
from codelstm.model.stepper import LstmStepper

NATIVE_BF16 = torch.ops.mkldnn._is_mkldnn_bf16_supported()


def random_state(model: ByteLM, rows: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    shape = (model.config.num_layers, rows, model.config.hidden_size)
    return tuple((torch.randn(shape, generator=generator) * 0.5).to(model.dtype) for _ in range(2))


@pytest.mark.parametrize("layers", [1, 3])
def test_step_equals_nn_lstm_step_in_float32(layers):
    torch.manual_seed(layers)
    model = ByteLM(ModelConfig(embed_dim=16, hidden_size=48, num_layers=layers)).eval()
    stepper = LstmStepper(model)
    ids = torch.randint(0, 256, (7,))
    for state in (None, random_state(model, 7)):
        with torch.no_grad(), use_onednn(False):
            want_logits, want_state = model.step(ids, state)
        got_logits, got_state = stepper(ids, state)
        assert got_logits.dtype == torch.float32 and got_logits.shape == (7, 256)
        assert torch.allclose(got_logits, want_logits, atol=1e-5)
        for got, want in zip(got_state, want_state):
            assert got.shape == want.shape and torch.allclose(got, want, atol=1e-5)


def test_bundled_model_reads_a_line_step_by_step_as_its_sequence_forward_does(bundled):
    """Teacher-forced over real code, the stepped log-probabilities match one forward over the line."""
    text = torch.tensor([list(b"\0import numpy as np\nx = np.zeros((3, 4))\n")])
    stepper = LstmStepper(bundled)
    with torch.no_grad(), use_onednn(False):
        want, _, _ = bundled(text)
    state, got = None, []
    for t in range(text.size(1)):
        logits, state = stepper(text[0, t:t + 1], state)
        got.append(logits)
    assert torch.allclose(torch.log_softmax(torch.cat(got), -1), torch.log_softmax(want[0], -1), atol=1e-4)


@pytest.mark.skipif(not NATIVE_BF16, reason="this CPU has no native bfloat16")
def test_bfloat16_rows_are_bitwise_independent_of_their_batch_mates_and_close_to_float32(bundled):
    model = copy.deepcopy(bundled).to(torch.bfloat16)
    stepper = LstmStepper(model)
    ids = torch.randint(1, 128, (40,), generator=torch.Generator().manual_seed(3))
    state = random_state(model, 40)
    crowd_logits, crowd_state = stepper(ids, state)
    for rows in (1, 3, 8, 17):
        alone_logits, alone_state = stepper(ids[:rows], tuple(s[:, :rows].contiguous() for s in state))
        assert torch.equal(crowd_logits[:rows], alone_logits)
        assert all(torch.equal(a[:, :rows], b) for a, b in zip(crowd_state, alone_state))
    with torch.no_grad(), use_onednn(False):
        float_logits, _ = bundled.step(ids, tuple(s.float() for s in state))
    float_probs = torch.softmax(float_logits, -1)
    assert (torch.softmax(crowd_logits, -1) - float_probs).abs().max() < 0.05  # bfloat16 keeps ~3 digits
    assert crowd_state[0].dtype == torch.bfloat16


@pytest.mark.skipif(not NATIVE_BF16, reason="this CPU has no native bfloat16")
@pytest.mark.parametrize("threads", [1, 2])
def test_bfloat16_steps_on_packed_weights_keep_rows_independent_and_agree_with_plain_products(bundled, threads):
    model = copy.deepcopy(bundled).to(torch.bfloat16)
    packed, plain = LstmStepper(model), LstmStepper(model, packed=False)
    assert packed.packed and not plain.packed  # torch 2.13's CPU build has the packed product
    assert not LstmStepper(bundled).packed  # float32 steps on MKL's products
    ids = torch.randint(1, 128, (24,), generator=torch.Generator().manual_seed(5))
    state = random_state(model, 24, seed=2)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        crowd_logits, crowd_state = packed(ids, state)
        plain_logits, _ = plain(ids, state)
        for rows in (1, 5, 9):  # a row's result does not depend on its batch-mates on several threads either
            alone_logits, alone_state = packed(ids[:rows], tuple(s[:, :rows].contiguous() for s in state))
            assert torch.equal(crowd_logits[:rows], alone_logits)
            assert all(torch.equal(a[:, :rows], b) for a, b in zip(crowd_state, alone_state))
    finally:
        torch.set_num_threads(previous)
    probs, plain_probs = torch.softmax(crowd_logits, -1), torch.softmax(plain_logits, -1)
    assert (probs - plain_probs).abs().max() < 1e-3  # the same products (bitwise on the 2-core VM)


def test_engine_steps_with_it_where_the_model_allows_and_falls_back_otherwise(bundled):
    assert isinstance(InferenceEngine(bundled).model_step, LstmStepper)
    assert not isinstance(InferenceEngine(bundled, written_out_step=False).model_step, LstmStepper)
    gru = ByteLM(ModelConfig(embed_dim=8, hidden_size=16, num_layers=1, cell="gru")).eval()
    int8 = quantize_int8(ByteLM(ModelConfig(embed_dim=8, hidden_size=16, num_layers=1)).eval())
    for model in (gru, int8):
        assert not LstmStepper.supports(model)
        assert not isinstance(InferenceEngine(model).model_step, LstmStepper)
        with pytest.raises(ValueError, match="LSTM"):
            LstmStepper(model)


def test_short_reads_by_the_step_reach_the_state_a_forward_read_does(bundled):
    from codelstm.model.generate import prefill, prefill_many

    stepper = LstmStepper(bundled)
    state, _ = prefill(bundled, b"def read_config(path):\n    with open(path) as f:\n        return f")
    texts, states = [b".", b"re", b"x", b"def"], [state, state, None, state]
    forward = prefill_many(bundled, texts, states)
    stepped = prefill_many(bundled, texts, states, step=stepper, step_up_to=2)
    for (want_state, want_logits), (got_state, got_logits), text in zip(forward, stepped, texts):
        assert got_logits.shape == want_logits.shape == (1, 256)
        assert torch.allclose(torch.log_softmax(got_logits.float(), -1), torch.log_softmax(want_logits.float(), -1),
                              atol=1e-4), text
        assert all(torch.allclose(g, w, atol=1e-5) for g, w in zip(got_state, want_state))
    assert stepper.dtype == torch.float32


def test_engine_reads_a_keystroke_with_its_written_out_step(bundled, monkeypatch):
    from codelstm.model.cache import StateCache
    from codelstm.model.engine import EngineRequest
    from codelstm.model.generate import SearchSpec

    engine = InferenceEngine(bundled, StateCache())
    stepped_rows = []
    step = engine.read_step

    def counting(ids, state):
        stepped_rows.append(ids.numel())
        return step(ids, state)

    monkeypatch.setattr(engine, "read_step", counting)
    monkeypatch.setattr(engine, "model_step", step)  # the search's steps are not counted
    prefix = "import os\n\ndef main():\n    path = os.path."
    engine.run([EngineRequest(prefix.encode(), SearchSpec(mode="token", n=3), "doc", None)])
    assert not stepped_rows  # the document's first read is a forward
    typed = engine.run([EngineRequest((prefix + "j").encode(), SearchSpec(mode="token", n=3), "doc", None)])[0]
    assert stepped_rows == [1] and typed.fed_chars == 1
