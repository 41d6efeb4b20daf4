"""Completion search: the stop rules of each mode, UTF-8 safety, distinct results, batching."""

from __future__ import annotations

import copy

import pytest
import torch

from codelstm.model import ByteLM, ModelConfig, load_checkpoint
from codelstm.model.engine import ONEDNN_FROM
from codelstm.model.network import use_onednn
from codelstm.model.generate import (Search, SearchSpec, complete, is_identifier_byte, prefill, prefill_many,
                                     run_searches)


@pytest.fixture(scope="module")
def random_model():
    torch.manual_seed(0)
    return ByteLM(ModelConfig(embed_dim=8, hidden_size=32, num_layers=1)).eval()


@pytest.fixture(scope="module")
def trained(tiny_model):
    model, _ = load_checkpoint(tiny_model)
    return model


def test_trained_model_completes_its_corpus_patterns(trained):
    line = complete(trained, "def function_3(value):\n    return ", SearchSpec(mode="line", n=3))
    assert line and line[0].text.startswith("value")
    assert any(c.text.startswith("value + ") for c in line)
    token = complete(trained, "def func", SearchSpec(mode="token", n=3))
    assert token[0].text == "tion_" or token[0].text.startswith("tion_")


@pytest.mark.parametrize("mode", ["token", "line", "block"])
def test_modes_respect_their_limits(random_model, mode):
    for prefix in ["def f(", "x = ", "class Foo:\n    "]:
        results = complete(random_model, prefix, SearchSpec(mode=mode, n=3, max_chars=20))
        texts = [c.text for c in results]
        assert len(texts) == len(set(texts)) <= 3
        for c in results:
            raw = c.text.encode("utf-8")
            assert 0 < len(raw) <= 20
            if mode == "token":
                assert all(is_identifier_byte(b) for b in raw)
            if mode == "line":
                assert "\n" not in c.text
            assert c.finish_reason in ("stop", "length", "newline", "identifier_end")


def test_sampling_never_splits_a_multibyte_character(random_model):
    """A random model with a high temperature emits plenty of non-ASCII; every result must be whole UTF-8:
    no replacement character, no surrogate, and a character cut by the byte limit dropped, not halved."""
    results = []
    for seed in range(20):
        spec = SearchSpec(mode="line", n=4, max_chars=7, temperature=3.0, seed=seed)
        results += complete(random_model, "s = '", spec)
    non_ascii = [c for c in results if any(ord(ch) > 127 for ch in c.text)]
    assert len(non_ascii) >= 10, "too little non-ASCII was generated: the test would prove nothing"
    for c in results:
        raw = c.text.encode("utf-8")  # raises on a lone surrogate
        assert len(raw) <= 7 and "\ufffd" not in c.text and raw.decode("utf-8") == c.text
    # a character that did not fit in the 7 bytes was dropped whole: some length-limited result is shorter
    assert any(c.finish_reason == "length" and len(c.text.encode("utf-8")) < 7 for c in non_ascii)


def test_sampling_is_reproducible_with_a_seed(random_model):
    spec = SearchSpec(mode="line", n=2, max_chars=16, temperature=1.0, seed=7)
    assert complete(random_model, "x", spec) == complete(random_model, "x", spec)


def test_stop_strings_and_suffix(trained):
    prefix = "def function_3(value):\n    return "
    full = complete(trained, prefix, SearchSpec(mode="line", n=1))[0].text
    stop = full[len(full) // 2:]
    cut = complete(trained, prefix, SearchSpec(mode="line", n=3, stop=(stop,)))
    assert cut and all(stop not in c.text for c in cut)
    assert full[: len(full) // 2] in [c.text for c in cut]
    # the text after the cursor already closes the call: it is not emitted again
    with_suffix = complete(trained, "def function_3(value", SearchSpec(mode="line", n=3, suffix="):\n"))
    assert all(not c.text.endswith("):") for c in with_suffix)


def test_block_mode_stops_at_dedent_or_blank_line(trained):
    results = complete(trained, "def function_2(value):\n", SearchSpec(mode="block", n=1, max_chars=200))
    assert results and results[0].finish_reason == "stop"
    assert "\ndef" not in results[0].text


def test_batched_searches_equal_single_searches(trained):
    prompts = [b"def function_1(", b"    return value", b"def f", b"\n\ndef function_4(value):\n"]
    spec = SearchSpec(mode="line", n=3, max_chars=24)

    def make(p):
        state, logits = prefill(trained, p)
        return Search(spec, state, logits, p)

    together = [make(p) for p in prompts]
    run_searches(trained, together)
    for p, search in zip(prompts, together):
        alone = make(p)
        run_searches(trained, [alone])
        assert [c.text for c in alone.results()] == [c.text for c in search.results()]
        for a, b in zip(alone.results(), search.results()):
            assert a.logprob == pytest.approx(b.logprob, abs=1e-4)


def test_prefill_in_pieces_equals_prefill_at_once(trained):
    text = b"def function_5(value):\n    return value + 5\n"
    state_a, logits_a = prefill(trained, text)
    state_b, logits_b = prefill(trained, text[:10])
    state_b, logits_b = prefill(trained, text[10:], state_b)
    torch.testing.assert_close(logits_a, logits_b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("onednn_from", [None, 1, ONEDNN_FROM], ids=["aten", "onednn", "server"])
def test_prefill_many_equals_prefill_one_at_a_time(trained, onednn_from):
    """Batched reading (fresh and resumed documents of equal and unequal lengths) changes no state: on ATen,
    on oneDNN for every group (`onednn_from=1`), and as the server's engine reads (oneDNN from 16 bytes),
    each compared with one-at-a-time reads on ATen."""
    texts = [b"def f(x):\n", b"import os\n", b"x = 1", b"class A:\n    pass\n", b"def long_function_name(x):\n"]
    resumed_from = prefill(trained, b"# head\n")[0]
    states = [None, None, resumed_from, resumed_from, None]
    batched = prefill_many(trained, texts, states, onednn_from=onednn_from)
    with use_onednn(False):
        for text, state, (got_state, got_logits) in zip(texts, states, batched):
            want_state, want_logits = prefill(trained, text, state)
            for got, want in zip(got_state, want_state):
                assert got.shape == want.shape and torch.allclose(got, want, atol=1e-5)
            assert torch.allclose(got_logits, want_logits, atol=1e-4)
            assert got_logits._base is None  # a copy: caching it keeps no batch alive


@pytest.mark.skipif(not torch.ops.mkldnn._is_mkldnn_bf16_supported(), reason="this CPU has no native bfloat16")
def test_bfloat16_rows_do_not_depend_on_their_batch_mates(trained):
    """What the server's bfloat16 default promises: a request's beams step bitwise alike alone or in a crowd."""
    model = copy.deepcopy(trained).to(torch.bfloat16)
    torch.manual_seed(0)
    ids = torch.randint(1, 128, (48,))
    state = tuple(torch.randn(s.shape[0], 48, s.shape[2]).to(torch.bfloat16) for s in model.initial_state(1))
    with use_onednn(True):
        crowd_logits, crowd_state = model.step(ids, state)
        alone_logits, alone_state = model.step(ids[:3], tuple(s[:, :3].contiguous() for s in state))
        read = prefill_many(model, [b"def f(x):\n", b"import os\n"], [None, None], onednn_from=1)
    assert torch.equal(crowd_logits[:3], alone_logits)
    assert all(torch.equal(a[:, :3], b) for a, b in zip(crowd_state, alone_state))
    for text, (got_state, _) in zip([b"def f(x):\n", b"import os\n"], read):
        want_state, _ = prefill(trained, text)
        assert got_state[0].dtype == torch.bfloat16
        assert torch.allclose(got_state[0].float(), want_state[0], atol=0.05)  # bfloat16 keeps ~3 digits


def test_cold_prefixes_gather_while_searches_run_but_keystrokes_do_not_wait(trained):
    from codelstm.model.cache import StateCache
    from codelstm.model.engine import EngineRequest, InferenceEngine

    engine = InferenceEngine(trained, StateCache(), prefill_wait_s=3600)
    line = SearchSpec(mode="line", n=3, max_chars=60)
    running = engine.start(EngineRequest(b"def function_1(value):\n    return ", line, "a.py"))
    engine.iterate([running])  # alone: read at once, then one search step
    assert running.search is not None and not running.done
    typed = b"def function_2(value):\n    return v"
    engine.run([EngineRequest(typed[:-1], line, "b.py")])  # b.py is now cached one byte short
    cold = engine.start(EngineRequest(b"class Thing:\n    pass\n" * 10, line))
    keystroke = engine.start(EngineRequest(typed, line, "b.py"))
    engine.iterate([running, cold])
    assert cold.position == 0  # a search runs and the wait has not passed: the cold prefix waits
    engine.iterate([running, cold, keystroke])
    assert cold.position == 0  # still waiting...
    assert keystroke.fed_chars == 1 and keystroke.search is not None  # ...but a keystroke never waits
    engine.prefill_wait_s = 0
    engine.iterate([running, cold])
    assert cold.position > 0


def test_searches_stepped_together_with_and_without_context_return_what_each_returns_alone(bundled, one_thread):
    """A round's mixing and choice of continuations run once for all its searches (`advance_searches`): searches
    of different documents, modes and widths, some with context models (one with logits of its own, as an
    adapted document has, which its batch-mates must not mix with), one sampling, each get what they get when
    stepped alone."""
    from codelstm.model.generate import search_step
    from codelstm.model.mixer import DocumentMixer, MixerWeights
    from codelstm.paths import DEFAULT_MODEL

    weights = MixerWeights.load(DEFAULT_MODEL)
    step = search_step(bundled)
    cases = [(b"import argparse\n\nparser = argparse.", SearchSpec(mode="token", n=5), True),
             (b"import os\n\npath = os.path.", SearchSpec(mode="token", n=3, beam_width=8), False),
             (b"def read(path):\n    with open(path) as f:\n        return ", SearchSpec(mode="line", n=3), True),
             (b"class A:\n    def __init__(self):\n", SearchSpec(mode="block", n=2, max_chars=60), "own logits"),
             (b"import numpy as np\n\nx = np.", SearchSpec(temperature=0.7, seed=5, n=2, max_chars=24), True),
             (b"for i in range(", SearchSpec(mode="line", n=2, max_chars=30), False)]

    def make(prefix, spec, context):
        state, logits = prefill(bundled, prefix)
        mixer = DocumentMixer.for_document(weights, prefix) if context else None
        if context == "own logits":
            mixer.logits = weights.logits * 0.5  # logits of its own, as `adapt` gives a document
        return Search(spec, state, logits, prefix, mixer)

    together = [make(*case) for case in cases]
    run_searches(bundled, together, step=step)
    for case, search in zip(cases, together):
        alone = make(*case)
        run_searches(bundled, [alone], step=step)
        assert [c.text for c in search.results()] == [c.text for c in alone.results()], case[0]
        assert [c.logprob for c in search.results()] == pytest.approx([c.logprob for c in alone.results()], abs=1e-4)


def test_each_search_keeps_its_best_continuations_ties_to_the_lower_beam_then_byte():
    """The compiled choice equals sorting every finite score of the search by (score, beam, byte), on scores
    with many exact ties (bfloat16 log-probabilities tie often)."""
    import numpy as np

    from codelstm.model.search_kernels import best_continuations

    rng = np.random.default_rng(0)
    sizes, wanted = [3, 1, 5, 2], [6, 2, 10, 600]
    grow = np.round(rng.normal(size=(sum(sizes), 256)), 1).astype(np.float32)  # few distinct values: ties
    grow[rng.random(grow.shape) < 0.3] = -np.inf
    grow[3] = -np.inf  # the second search has no allowed byte at all
    offsets = np.cumsum([0, *sizes])
    scores, indices, found = best_continuations(grow, offsets, np.array(wanted))
    for s, k in enumerate(wanted):
        rows = grow[offsets[s]:offsets[s + 1]].ravel()
        expected = sorted((i for i in range(rows.size) if rows[i] > -np.inf), key=lambda i: (-rows[i], i))[:k]
        assert found[s] == len(expected)
        assert indices[s, :found[s]].tolist() == expected
        assert scores[s, :found[s]].tolist() == rows[expected].tolist()
    assert found[1] == 0
