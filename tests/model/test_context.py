"""Context models and the mixer: predictions match a brute-force reading of the history, the mixture is a
distribution over all 256 bytes, and fitted weights beat the LSTM alone on repetitive code it never saw."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from codelstm.model import load_checkpoint
from codelstm.model.context import (EMPTY, ContextConfig, ContextIndex, context_keys, document_predictions, hash_bytes,
                                    TextHashes)
from codelstm.model.mixer import (GATES, MixerWeights, bits, gate_classes, gather_evidence, mix_distribution,
                                  mixed_target_probability, lstm_buckets, selector_of)
from codelstm.model.names import NameTable, document_names
from codelstm.training.mixer_fit import fit_logits

CONFIG = ContextConfig(orders=(1, 2, 3, 4, 6, 8), recent=8, identifier_max=16)

DOC = b"".join(
    f"def handle_{name}(request, value):\n    result = lib.compute_{name}(value)\n    return result.real + {i}\n\n".encode()
    for i, name in enumerate(["alpha", "beta", "gamma", "alpha", "delta", "beta", "epsilon", "gamma"] * 2))
# the names model's table, as if counted on a training corpus that used `lib`, `.real` and `canvas`
NAMES = NameTable.build([b"x = lib.compute_alpha(1)\ny = lib.compute_beta(2)\nz = lib.compute_alpha(3)\n"
                         b"w = lib.compute_zeta(4)\nq = v.real + v.imag\nr = u.real\nfrom typing import Any\n"
                         b"canvas.draw(a)\ncanvas.draw(b)\ncanvas.clear()\n"], min_key_count=1, min_name_count=1)
WORKSPACE = b"def compute_alpha(value):\n    return value * 2\n\x00class Handler:\n    def handle_zeta(self):\n        pass\n\x00"


def brute_force_next_bytes(history: bytes, workspace: bytes, context: bytes, recent: int) -> list[int]:
    """Bytes that followed the latest occurrences of `context`: in the history (latest first), then the workspace."""
    def followers(source: bytes) -> list[int]:
        ends, at = [], source.find(context)
        while at >= 0:
            if at + len(context) < len(source):
                ends.append(at + len(context))
            at = source.find(context, at + 1)
        return [source[e] for e in reversed(ends)]

    return (followers(history) + followers(workspace))[:recent]


def test_slice_hashes_depend_on_content_only():
    data = b"xx return value yy return value"
    hashes = TextHashes(data)
    a, b = data.find(b"return value"), data.rfind(b"return value")
    got = hashes.slices(np.array([a, b]), np.array([a + 12, b + 12]))
    assert got[0] == got[1] == np.uint64(hash_bytes(b"return value"))
    assert hashes.slices(np.array([0]), np.array([3]))[0] != got[0]


def test_the_same_bytes_as_contexts_of_two_models_are_looked_up_apart():
    """One sorted array holds every model's keys: `ab` as an order-2 context (after `zab1` and ` ab2`) and
    as the identifier typed so far (only ` ab2` starts a name with it) must not see each other's followers."""
    from codelstm.model.context_view import ContextView

    order2, ident = CONFIG.orders.index(2), len(CONFIG.orders)
    h = np.array([hash_bytes(b"ab")], dtype=np.uint64)
    assert context_keys(h.copy(), order2, CONFIG)[0] != context_keys(h.copy(), ident, CONFIG)[0]
    workspace = ContextIndex.build(b"zab1 ab2 \0", CONFIG)
    doc = b"q ab"
    bulk = document_predictions(doc + b"!", CONFIG, workspace)
    assert [int(b) for b in bulk.next_bytes[order2][len(doc)] if b != EMPTY] == [ord("2"), ord("1")]
    assert [int(b) for b in bulk.next_bytes[ident][len(doc)] if b != EMPTY] == [ord("2")]
    for cut, index in ((4, None), (4, ContextIndex.build(doc, CONFIG)), (2, ContextIndex.build(doc[:2], CONFIG))):
        view = ContextView(CONFIG, doc[:cut], index, workspace).predict(doc[cut:])
        assert view.followers[order2] == [ord("2"), ord("1")], cut
        assert view.followers[ident] == [ord("2")], cut


@pytest.mark.parametrize("with_workspace", [False, True])
def test_order_models_list_the_bytes_that_followed_earlier_occurrences(with_workspace):
    workspace = ContextIndex.build(WORKSPACE, CONFIG) if with_workspace else None
    pred = document_predictions(DOC, CONFIG, workspace)
    rng = random.Random(0)
    for i in rng.sample(range(len(DOC)), 200):
        for m, order in enumerate(CONFIG.orders):
            row = [int(b) for b in pred.next_bytes[m][i] if b != EMPTY]
            if i < order:
                assert row == []
                continue
            expected = brute_force_next_bytes(DOC[:i], WORKSPACE if with_workspace else b"", DOC[i - order:i],
                                              CONFIG.recent)
            assert row == expected, (i, order)


def test_identifier_model_predicts_how_a_name_seen_before_ends():
    i = DOC.index(b"compute_gamma") + len(b"compute_g")  # the first `compute_g...`: only `compute_alpha/beta` before
    pred = document_predictions(DOC, CONFIG)
    ident = CONFIG.orders.__len__()  # the identifier model comes right after the orders
    assert [b for b in pred.next_bytes[ident][i] if b != EMPTY] == []  # `compute_g` never occurred before
    j = DOC.index(b"compute_gamma", i) + len(b"compute_g")  # its second occurrence
    assert chr(pred.next_bytes[ident][j][0]) == "a"
    k = DOC.index(b"handle_epsilon") + len(b"handle_")  # `handle_` seen before, followed by several names
    assert len({b for b in pred.next_bytes[ident][k] if b != EMPTY}) >= 3


def test_match_model_follows_the_latest_longest_context_and_measures_the_match():
    second = DOC.index(b"def handle_alpha", 1) + len(b"def handle_alpha(request, value):\n    resu")
    pred = document_predictions(DOC, CONFIG)
    longest = max(CONFIG.orders)
    latest = DOC[:second - 1].rfind(DOC[second - longest:second]) + longest  # where the byte after it sits
    agree = 0
    while agree < 64 and DOC[second - 1 - agree] == DOC[latest - 1 - agree]:
        agree += 1
    assert chr(pred.match_byte[second]) == chr(DOC[latest]) == "l"
    assert pred.match_length[second] == agree > longest


def _evidence(doc: bytes, workspace: ContextIndex | None = None, logprobs: np.ndarray | None = None):
    if logprobs is None:
        rng = np.random.default_rng(0)
        logits = rng.normal(size=(len(doc), 256))
        logprobs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    target = logprobs[np.arange(len(doc)), np.frombuffer(doc, dtype=np.uint8)]
    top = np.exp(logprobs.max(axis=1))
    workspace_bytes = len(workspace.data) if workspace is not None else 0
    return gather_evidence(doc, document_predictions(doc, CONFIG, workspace), target, top, CONFIG,
                           workspace_bytes, document_names(doc, NAMES)), logprobs


def _random_weights(rng: np.random.Generator, online_rate: float) -> MixerWeights:
    shapes = MixerWeights(CONFIG)
    return MixerWeights(CONFIG, rng.normal(size=shapes.logits.shape), online_rate=online_rate,
                        gates={name: rng.normal(size=table.shape) for name, table in shapes.gates.items()}, names=NAMES)


def test_mixed_distribution_sums_to_one_and_agrees_with_the_bulk_score():
    rng = np.random.default_rng(1)
    weights = _random_weights(rng, online_rate=0.0)
    workspace = ContextIndex.build(WORKSPACE, CONFIG)
    evidence, logprobs = _evidence(DOC, workspace)
    classes = gate_classes(evidence, CONFIG)  # the document spans several classes of every gate but the
    assert all(len(set(classes[:, GATES.index(name)].tolist())) >= 3  # LSTM's (random logits: never sure)
               for name in GATES if name != "lstm")
    bulk = mixed_target_probability(weights, evidence, adapt=False)
    pred = document_predictions(DOC, CONFIG, workspace)
    for i in rng.choice(len(DOC), 100, replace=False):
        probs = np.exp(logprobs[i])
        previous = DOC[i - 1] if i else -1
        dist = mix_distribution(weights, probs, int(selector_of(np.array([previous]))[0]), int(i) + len(WORKSPACE),
                                int(lstm_buckets(np.array([probs.max()]))[0]), [t[i] for t in pred.next_bytes],
                                int(pred.match_byte[i]), int(pred.match_length[i]), NAMES.predict_at(DOC, int(i)))
        assert dist.shape == (256,)
        assert abs(dist.sum() - 1.0) < 1e-5
        assert (dist > 0).all()  # the LSTM keeps every byte possible
        assert dist[DOC[i]] == pytest.approx(bulk[i], rel=1e-9)


def test_mixer_weights_round_trip_through_json(tmp_path):
    import json

    weights = _random_weights(np.random.default_rng(2), online_rate=0.03)
    weights.fitted_on = {"bytes": 12}
    weights.save(tmp_path)
    assert sorted((p.name, p.stat().st_mode & 0o777) for p in tmp_path.iterdir()) == [
        ("mixer.json", 0o644), ("names.safetensors", 0o644)]  # whole files, readable by a service's user
    back = MixerWeights.load(tmp_path)
    assert back.config == CONFIG and back.online_rate == 0.03 and back.fitted_on == {"bytes": 12}
    np.testing.assert_allclose(back.logits, weights.logits, atol=1e-5)
    for name in GATES:
        np.testing.assert_allclose(back.gates[name], weights.gates[name], atol=1e-5)
    assert back.names.spans == NAMES.spans
    assert all(back.names.entries_of(k) == NAMES.entries_of(k) for k in NAMES.spans)
    # a mixer.json of format 3 (before the names model) reads as one whose names model never weighs
    data = json.loads((tmp_path / "mixer.json").read_text())
    drop = data["models"].index("names")
    data = {**data, "format": "codelstm-mixer/3", "models": data["models"][:drop],
            "logits": np.delete(np.array(data["logits"]), drop, axis=1).tolist(),
            "gates": {name: np.delete(np.array(t), drop, axis=1).tolist() for name, t in data["gates"].items()
                      if name != "names"}}
    (tmp_path / "mixer.json").write_text(json.dumps(data))
    three = MixerWeights.load(tmp_path)
    assert three.names is None and not three.logits[:, drop].any() and not three.gates["names"].any()
    weights.logits[:, drop] = 0  # what the older formats below read back
    for table in weights.gates.values():
        table[:, drop] = 0
    np.testing.assert_allclose(three.logits, weights.logits, atol=1e-5)
    # a mixer.json of format 2 (the history gate only) reads as one where the other gates make no difference
    gates = data.pop("gates")
    (tmp_path / "mixer.json").write_text(json.dumps({**data, "format": "codelstm-mixer/2",
                                                     "history_logits": gates["history"]}))
    older = MixerWeights.load(tmp_path)
    np.testing.assert_allclose(older.gates["history"], weights.gates["history"], atol=1e-5)
    assert not any(older.gates[name].any() for name in GATES if name != "history")
    # and format 1 (before any gate) as one where no gate does
    del data["history_edges"]
    (tmp_path / "mixer.json").write_text(json.dumps({**data, "format": "codelstm-mixer/1"}))
    old = MixerWeights.load(tmp_path)
    np.testing.assert_allclose(old.logits, weights.logits, atol=1e-5)
    assert not any(old.gates[name].any() for name in GATES)
    (tmp_path / "mixer.json").write_text('{"format": "something-else"}')
    with pytest.raises(ValueError, match="not a usable mixer"):
        MixerWeights.load(tmp_path)
    assert MixerWeights.load(tmp_path / "missing") is None


@torch.no_grad()
def _lstm_logprobs(model, doc: bytes) -> np.ndarray:
    ids = torch.tensor([0, *doc], dtype=torch.long).view(1, -1)
    logits, _, _ = model(ids[:, :-1])
    return torch.log_softmax(logits[0].float(), dim=-1).numpy()


def test_fitted_mixer_beats_the_lstm_alone_on_code_it_never_saw(tiny_model):
    """The tiny model learned `def function_N(value)` files; these files use other names, repeated within
    each file: the context models pick the repeats up, and online adaptation helps further."""
    model, _ = load_checkpoint(tiny_model)
    files = [b"".join(f"class Widget{k}:\n    def render_{k}(self, canvas):\n        canvas.draw(self.shape_{k})\n\n"
                      .encode() for k in range(j, j + 6)) for j in range(6)]
    evidence = [_evidence(f, logprobs=_lstm_logprobs(model, f))[0] for f in files]
    fitted = fit_logits(MixerWeights(CONFIG, online_rate=0.0), evidence[:3], steps=150)
    assert not fitted.gates["history"].any()  # the history gate is fitted only when asked for
    assert all(fitted.gates[name].any() for name in GATES if name != "history")
    assert fit_logits(MixerWeights(CONFIG, online_rate=0.0), evidence[:3], steps=20,
                      fit_history=True).gates["history"].any()
    held_out = evidence[3:]
    n = sum(len(f) for f in files[3:])
    lstm_alone = sum(bits(e.target_probability[:, 0]) for e in held_out) / n
    mixed = sum(bits(mixed_target_probability(fitted, e, adapt=False)) for e in held_out) / n
    fitted.online_rate = 0.05
    adapted = sum(bits(mixed_target_probability(fitted, e, adapt=True)) for e in held_out) / n
    assert mixed < 0.7 * lstm_alone
    assert adapted < mixed + 0.02


@pytest.mark.parametrize("indexed_share", [0.0, 0.5, 0.9])
def test_one_position_view_equals_the_bulk_predictions(indexed_share):
    """What a search step sees (document index + unindexed recent bytes + the beam's own bytes + workspace)
    is what the bulk reading gives at the same position."""
    from codelstm.model.context_view import ContextView

    workspace = ContextIndex.build(WORKSPACE, CONFIG)
    pred = document_predictions(DOC, CONFIG, workspace)
    rng = random.Random(int(indexed_share * 10))
    for i in rng.sample(range(len(DOC)), 60):
        cut = rng.randint(0, i)  # the document so far ends at `cut`; DOC[cut:i] are a beam's generated bytes
        indexed = int(cut * indexed_share)
        index = ContextIndex.build(DOC[:indexed], CONFIG) if indexed else None
        view = ContextView(CONFIG, DOC[:cut], index, workspace).predict(DOC[cut:i])
        for m, table in enumerate(pred.next_bytes):
            assert view.tables[m].tolist() == table[i].tolist(), (i, cut, indexed, m)
        assert (view.match_byte, view.match_length) == (int(pred.match_byte[i]), int(pred.match_length[i])), i


def test_document_mixer_gives_a_search_step_what_the_adaptive_evaluation_gives():
    """Adapted along the document so far, the mixer's distribution for each beam sums to 1 and scores the
    actual next byte as the evaluation does at that position."""
    from codelstm.model.context_view import ContextView
    from codelstm.model.mixer import DocumentMixer

    rng = np.random.default_rng(3)
    weights = _random_weights(rng, online_rate=0.05)
    workspace = ContextIndex.build(WORKSPACE, CONFIG)
    evidence, logprobs = _evidence(DOC, workspace)
    walked = mixed_target_probability(weights, evidence, adapt=True)
    target = logprobs[np.arange(len(DOC)), np.frombuffer(DOC, dtype=np.uint8)]
    top = np.exp(logprobs.max(axis=1))
    for cut in (1, 200, len(DOC) // 2, len(DOC) - 5):
        prefix = DOC[:cut]
        mixer = DocumentMixer(weights, ContextView(CONFIG, prefix, ContextIndex.build(prefix[:cut // 2], CONFIG),
                                                   workspace))
        mixer.adapt(target[:cut], top[:cut], document_predictions(prefix, CONFIG, workspace))
        generated = [b"", DOC[cut:cut + 3]]
        mixed = np.exp(mixer.mix(generated, logprobs[[cut, cut + 3]]))
        assert np.allclose(mixed.sum(axis=1), 1.0, atol=1e-5)
        assert mixed[0, DOC[cut]] == pytest.approx(walked[cut], rel=1e-6)


def test_documents_packed_into_lanes_score_as_if_read_alone(tiny_model):
    from codelstm.model.scoring import lstm_scores_many, read_scored

    model, _ = load_checkpoint(tiny_model)
    docs = [DOC[:n] for n in (5, 700, 1, 300, 1200, 64)]
    packed = lstm_scores_many(model, docs, lanes=3, chunk=100)
    for doc, (target, top) in zip(docs, packed):
        _, _, (alone_target, alone_top) = read_scored(model, doc)
        np.testing.assert_allclose(target, alone_target, atol=1e-4)
        np.testing.assert_allclose(top, alone_top, atol=1e-4)


@pytest.mark.parametrize("edit", ["appended", "changed"])
def test_a_view_over_an_older_index_of_the_document_equals_the_bulk_predictions(edit):
    """A server keeps a document's index across keystrokes: an index over text that agrees with the document
    only up to some point (the user typed on, or edited above the cursor) gives the same predictions."""
    from codelstm.model.cache import common_prefix_length
    from codelstm.model.context_view import ContextView

    workspace = ContextIndex.build(WORKSPACE, CONFIG)
    pred = document_predictions(DOC, CONFIG, workspace)
    rng = random.Random(7)
    for i in rng.sample(range(40, len(DOC)), 40):
        cut = rng.randint(20, i)
        same = rng.randint(0, cut)
        older = DOC[:same] + (b"return other_name(value)\n" if edit == "changed" else b"")
        view = ContextView(CONFIG, DOC[:cut], ContextIndex.build(older, CONFIG), workspace)
        assert view.indexed == common_prefix_length(older, DOC[:cut]) >= min(same, cut)
        got = view.predict(DOC[cut:i])
        for m, table in enumerate(pred.next_bytes):
            assert got.tables[m].tolist() == table[i].tolist(), (i, cut, same, m)
        assert (got.match_byte, got.match_length) == (int(pred.match_byte[i]), int(pred.match_length[i])), i


def test_the_engine_mixes_as_complete_does_also_from_a_cached_document_index():
    """One distribution everywhere: the server's engine (context index cached per document, recent bytes
    indexed per request) returns what `generate.complete` returns with the same mixer and workspace."""
    from codelstm.model.cache import StateCache
    from codelstm.model.engine import EngineRequest, InferenceEngine
    from codelstm.model.generate import SearchSpec, complete
    from codelstm.paths import DEFAULT_MODEL

    model, _ = load_checkpoint(DEFAULT_MODEL)
    weights = MixerWeights.load(DEFAULT_MODEL)
    workspace = ContextIndex.build(WORKSPACE, weights.config)
    engine = InferenceEngine(model.eval(), StateCache(), mixer=weights)
    text = DOC.decode()
    spec = SearchSpec(mode="token", n=3, max_chars=24)
    for cut in (len(text) // 2, len(text) - 30):  # typing on into the same document
        prefix = text[:cut] + "handle_"
        for ws in (None, workspace):
            got = engine.run([EngineRequest(prefix.encode(), spec, "doc", ws)])[0].completions
            expected = complete(model, prefix, spec, weights, ws)
            assert [c.text for c in got] == [c.text for c in expected], (cut, ws is not None)
            assert [c.logprob for c in got] == pytest.approx([c.logprob for c in expected], abs=1e-3)
    assert engine.cache.context("doc") is not None


def test_beams_stepping_on_from_their_parents_see_what_a_fresh_view_sees():
    """A search step's beams extend the previous step's: their context hashes are carried over from the
    parent (one multiply per length) and must equal those computed from the bytes."""
    from codelstm.model.context_view import ContextView

    workspace = ContextIndex.build(WORKSPACE, CONFIG)
    for cut in (3, 200, len(DOC) // 2):
        stepping = ContextView(CONFIG, DOC[:cut], None, workspace)
        for j in range(1, 50):
            beams = [DOC[cut:cut + j], DOC[cut:cut + j - 1] + b"_", DOC[cut + 1:cut + j + 1]]
            got = stepping.predict_many(beams)
            for beam, prediction in zip(beams, got):
                fresh = ContextView(CONFIG, DOC[:cut], None, workspace).predict(beam)
                assert prediction == fresh, (cut, j, beam)
