"""The search metrics: positions spread through whole files, and batched searches that score exactly as one
search at a time would."""

from __future__ import annotations

import pytest

from codelstm.model import load_checkpoint
from codelstm.model.generate import Search, prefill, run_searches
from codelstm.training.metrics import (LINE_SPEC, TOKEN_SPEC, Sampling, evaluate, identifier_accuracy,
                                       identifier_starts, keystrokes_saved)
from codelstm.training.sampling import spread, spread_positions, typist_windows

LICENCE = b"# Copyright 2026 The Authors. Licensed under the Apache License, Version 2.0.\n" * 6


def module(i: int) -> bytes:
    body = "".join(f"def function_{j}(value):\n    return value + {j}\n\n" for j in range(i % 5 + 4))
    return LICENCE + f"# module {i}\n\n{body}".encode()


DOCS = [module(i) for i in range(6)]


def test_spread_picks_evenly_from_the_whole_range():
    assert spread(100, 4) == [12, 37, 62, 87]
    assert spread(3, 10) == [0, 1, 2]
    assert spread(0, 5) == []


def test_typist_windows_start_at_line_starts_spread_through_the_file():
    doc = DOCS[3]
    windows = typist_windows(doc, 96, 3)
    assert len(windows) == 3 and sum(e - s for s, e in windows) <= 96
    for (start, end), (next_start, _) in zip(windows, windows[1:]):
        assert end <= next_start
    assert all(s == 0 or doc[s - 1:s] == b"\n" for s, _ in windows)
    thirds = [start * 3 // len(doc) for start, _ in windows]
    assert thirds == [0, 1, 2]  # one stretch in each third of the file, not all in its licence header
    assert typist_windows(b"short\n", 96, 3) == [(0, 6)]


def test_identifier_sample_reaches_past_the_licence_header(tiny_model):
    model, _ = load_checkpoint(tiny_model)
    starts = [p for p, _ in identifier_starts(DOCS[0])]
    picked = [starts[j] for j in spread_positions(starts, len(DOCS[0]), 8)]
    assert len(picked) == 8 and {p * 4 // len(DOCS[0]) for p in picked} == {0, 1, 2, 3}  # every quarter
    tried, _, _ = identifier_accuracy(model, DOCS[:1], 8, "float32")
    assert tried == 8


def one_identifier_search_at_a_time(model, docs, per_file):
    tried = top1 = top5 = 0
    for doc in docs:
        starts = identifier_starts(doc)
        for j in spread_positions([p for p, _ in starts], len(doc), per_file):
            p, ident = starts[j]
            state, logits = prefill(model, doc[:p])
            search = Search(TOKEN_SPEC, state, logits, doc[max(0, p - 256):p])
            run_searches(model, [search])
            texts = [c.text.encode() for c in search.results()]
            tried, top1, top5 = tried + 1, top1 + (bool(texts) and texts[0] == ident), top5 + (ident in texts)
    return tried, top1, top5


def one_typist_at_a_time(model, docs, typed_bytes, windows):
    chars = accepted = accepts = 0
    for doc in docs:
        for start, end in typist_windows(doc, typed_bytes, windows):
            pos, chars = start, chars + end - start
            while pos < end:
                state, logits = prefill(model, doc[:pos])
                search = Search(LINE_SPEC, state, logits, doc[max(0, pos - 256):pos])
                run_searches(model, [search])
                results = search.results()
                offer = results[0].text.encode() if results else b""
                step = 1
                if offer and doc.startswith(offer, pos):
                    step = min(len(offer), end - pos)
                    accepted, accepts = accepted + step, accepts + 1
                pos += step
    return chars, accepted, accepts


def test_batched_identifier_accuracy_equals_one_search_at_a_time(tiny_model):
    model, _ = load_checkpoint(tiny_model)
    assert identifier_accuracy(model, DOCS[:3], 12, "float32") == one_identifier_search_at_a_time(model, DOCS[:3], 12)


def test_batched_typists_equal_one_typist_at_a_time(tiny_model):
    model, _ = load_checkpoint(tiny_model)
    chars, accepted, accepts, windows = keystrokes_saved(model, DOCS[:3], 120, 3, "float32")
    assert windows == 9
    assert (chars, accepted, accepts) == one_typist_at_a_time(model, DOCS[:3], 120, 3)
    assert accepts > 0  # the repetitive bodies are completed, so the comparison covers acceptances


def test_evaluate_reports_its_sample(tiny_model):
    model, _ = load_checkpoint(tiny_model)
    result = evaluate(model, DOCS, Sampling(files=4, identifiers=5, typed_bytes=60, windows=2), precision="float32")
    assert result.files == 6 and result.bytes == sum(map(len, DOCS))
    assert result.sample_files == 4 and result.identifiers == 20 and result.typist_windows == 8
    assert result.typed_chars == 4 * 60 and result.precision == "float32"
    assert set(result.seconds) == {"bpc", "identifiers", "keystrokes"}
    assert 0 <= result.keystrokes_saved < 1 and result.top1 <= result.top5
