"""Packed BPC and packed state reads against the plain definition: each document alone, from a zero state."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from codelstm.model import ByteLM, ModelConfig, load_checkpoint
from codelstm.model.generate import prefill
from codelstm.training.evaluate import bits_by_document, document_nll_bits, pack_lanes, states_at

DOCS = [b"def f(x):\n    return x + 1\n" * 9, b"x", b"import os\n", b"class A:\n    pass\n" * 4,
        "print('h\u00e9llo')\n".encode(), b"for i in range(10):\n    total += i * i\n" * 3, b"ab"]


def random_model(cell: str) -> ByteLM:
    torch.manual_seed(0)
    return ByteLM(ModelConfig(cell=cell, embed_dim=8, hidden_size=24, num_layers=2)).eval()


@torch.no_grad()
def bits_one_document_at_a_time(model: ByteLM, docs: list[bytes]) -> float:
    """The SPEC definition written out plainly: NUL then the document, from a fresh state, every byte scored."""
    total = 0.0
    for doc in docs:
        ids = torch.tensor([0, *doc]).view(1, -1)
        logits, _, _ = model(ids[:, :-1])
        total += float(F.cross_entropy(logits.reshape(-1, 256), ids[0, 1:], reduction="sum")) / math.log(2)
    return total


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("lanes,chunk", [(1, 512), (3, 7), (64, 5)])
def test_packed_bpc_equals_each_document_read_alone(cell, lanes, chunk):
    model = random_model(cell)
    bits, n = document_nll_bits(model, DOCS, lanes=lanes, chunk=chunk, precision="float32")
    assert n == sum(map(len, DOCS))
    assert bits == pytest.approx(bits_one_document_at_a_time(model, DOCS), rel=1e-5)


@pytest.mark.parametrize("lanes,chunk", [(1, 512), (3, 7), (64, 5)])
def test_packed_bits_are_credited_to_the_document_each_byte_belongs_to(lanes, chunk):
    """Per-document bits from one packed read equal each document read alone (none leak into a lane-mate),
    and an empty document costs nothing."""
    model = random_model("lstm")
    docs = [*DOCS[:3], b"", *DOCS[3:]]
    bits = bits_by_document(model, docs, lanes=lanes, chunk=chunk, precision="float32")
    assert len(bits) == len(docs) and bits[3] == 0.0
    for doc, got in zip(docs, bits):
        if doc:
            assert got == pytest.approx(bits_one_document_at_a_time(model, [doc]), rel=1e-5)


def test_packed_bpc_of_a_trained_model_equals_each_document_read_alone(tiny_model, tiny_corpus):
    from codelstm.training.data import open_stream, split_documents

    model, _ = load_checkpoint(tiny_model)
    docs = split_documents(open_stream(tiny_corpus / "val.bin"))
    bits, n = document_nll_bits(model, docs, lanes=4, chunk=64, precision="float32")
    assert bits == pytest.approx(bits_one_document_at_a_time(model, docs), rel=1e-5)
    assert bits / n < 4.0  # it learned the corpus: far below the 8 bits of a uniform guess


def test_bfloat16_bpc_is_within_a_hundredth_of_float32(tiny_model, tiny_corpus):
    from codelstm.training.data import open_stream, split_documents

    model, _ = load_checkpoint(tiny_model)
    docs = split_documents(open_stream(tiny_corpus / "val.bin"))
    f32, n = document_nll_bits(model, docs, precision="float32")
    bf16, _ = document_nll_bits(model, docs, precision="bfloat16")
    assert abs(bf16 - f32) / n < 0.01


def test_lanes_are_filled_evenly_and_never_wider_than_needed():
    lengths = [900, 500, 400, 300, 300, 200, 100, 100]
    packed = pack_lanes(lengths, lanes=64)
    assert sorted(i for lane in packed for i in lane) == list(range(len(lengths)))
    fill = [sum(lengths[i] + 1 for i in lane) for lane in packed]
    assert len(packed) == 4  # 2,808 bytes need no more than four lanes of the longest document's 901
    assert max(fill) <= 901 + 100


@pytest.mark.parametrize("precision,tolerance", [("float32", 1e-4), ("bfloat16", 0.5)])
def test_states_at_positions_match_prefill(precision, tolerance):
    model = random_model("lstm")
    positions = [[0, 1, 50, len(DOCS[0])], [0, 1], [3], [len(DOCS[3]) // 2], [], [7, 8, 9], [2]]
    got = states_at(model, DOCS, positions, lanes=3, chunk=16, precision=precision)
    for doc, ps, states in zip(DOCS, positions, got):
        assert len(states) == len(ps)
        for p, (state, logits) in zip(ps, states):
            want_state, want_logits = prefill(model, doc[:p])
            assert state[0].dtype == model.dtype and logits.shape == (1, 256)
            assert (logits - want_logits).abs().max() < tolerance
            for a, b in zip(state, want_state):
                assert (a - b).abs().max() < tolerance
