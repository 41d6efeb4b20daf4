"""Text features (one value per UTF-8 byte) and the correlation ranking, on hand-labelled snippets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from codelstm.explorer.features import CODE_FEATURES, FEATURES, compute_features
from codelstm.explorer.neurons import correlations, rank_neurons
from codelstm.model.activations import Trace


def per_char(text: str, name: str, language: str | None = None) -> list:
    """The feature at each character (its last byte), NaN as None, for readable expectations."""
    data = text.encode()
    values = compute_features(data, [name], language)[name]
    out, byte = [], 0
    for ch in text:
        byte += len(ch.encode())
        v = values[byte - 1]
        out.append(None if math.isnan(v) else int(v))
    return out


def test_every_feature_has_one_value_per_byte():
    data = "déf f(x):\n\t'é'  # ü\n\0aXb".encode()
    features = compute_features(data, list(FEATURES))
    assert set(features) == set(FEATURES)
    assert all(v.shape == (len(data),) for v in features.values())
    assert all(FEATURES[n].description for n in FEATURES)
    with pytest.raises(KeyError, match="unknown features"):
        compute_features(data, ["indent_depth", "nope"])


def test_indent_depth():
    text = "if x:\n    y()\n\tz\n"
    assert per_char(text, "indent_depth") == [0] * 6 + [4] * 8 + [8] * 3


def test_bracket_depth_ignores_strings_and_comments():
    text = 'f(a[1], "(", {2}) # (\n'
    assert per_char(text, "bracket_depth") == [0, 1, 1, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 1, 0, 0, 0, 0, 0, 0]


def test_in_string_with_escapes_and_triple_quotes():
    text = 'a = "x\\"y" + """p\nq"""\n'
    got = per_char(text, "in_string")
    assert got[:4] == [0, 0, 0, 0]
    assert got[4:10] == [1, 1, 1, 1, 1, 0]  # "x\"y": the escaped quote stays inside, the closing quote is out
    assert got[13:16] == [1, 1, 1] and got[16:19] == [1, 1, 1]  # """p\n
    assert got[19:22] == [1, 1, 0] and got[22] == 0  # closing """ ends at its last quote
    assert per_char("s = 'abc\nt", "in_string")[4:] == [1, 1, 1, 1, 0, 0]  # unterminated: ends at the newline


def test_in_comment_python_and_c():
    assert per_char("x = 1  # note\ny", "in_comment") == [0] * 7 + [1] * 6 + [0, 0]
    assert per_char("a # b", "in_comment", "java") == [0] * 5  # '#' is not a comment in C-like languages
    assert per_char("a // b\nc", "in_comment", "go") == [0, 0, 1, 1, 1, 1, 0, 0]
    assert per_char("a /* b */ c", "in_comment", "rust") == [0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0]
    assert per_char("x = a // b", "in_comment", "python") == [0] * 10  # floor division in Python


def test_column_counts_characters():
    assert per_char("ab\nédf\n", "column") == [0, 1, 2, 0, 1, 2, 3]
    data = "é".encode()
    assert list(compute_features(data, ["column"])["column"]) == [0, 0]  # both bytes of the character


def test_to_identifier_end():
    assert per_char("foo(x1, 42) 'ab'", "to_identifier_end") == [
        2, 1, 0, None, 1, 0, None, None, None, None, None, None, None, None, None, None]


def test_task_features_reset_at_each_document():
    text = "aaXbb\n\0aXb\n"
    assert per_char(text, "a_minus_b") == [1, 2, 2, 1, 0, 0, 0, 1, 1, 0, 0]
    assert per_char(text, "a_count") == [1, 2, 2, 2, 2, 2, 0, 1, 1, 1, 1]
    assert per_char("AxxYa\n\0BxYb\n", "first_letter") == [1] * 6 + [-1] * 6
    assert per_char("abXab\n", "to_copy") == [1, 2, 2, 1, 0, 0]


def test_correlations():
    t = np.arange(50, dtype=np.float64)
    values = np.stack([t, -2 * t + 3, np.ones(50), np.sin(t)], axis=1)
    r = correlations(values, t)
    assert r[0] == pytest.approx(1) and r[1] == pytest.approx(-1) and r[2] == 0 and abs(r[3]) < 0.2
    masked = t.copy()
    masked[::2] = np.nan  # undefined bytes are skipped, not counted as zeros
    values[::2, 0] = 1000.0
    assert correlations(values, masked)[0] == pytest.approx(1)
    assert list(correlations(values, np.full(50, np.nan))) == [0, 0, 0, 0]


def test_rank_neurons_finds_a_planted_unit():
    rng = np.random.default_rng(0)
    data = "    x = (a + b)\n" * 20
    features = compute_features(data.encode(), list(CODE_FEATURES))
    depth = features["bracket_depth"]
    layers = []
    for k in range(2):
        layer = {q: torch.tensor(rng.normal(size=(len(data), 8)), dtype=torch.float32) for q in ("h", "c")}
        layers.append(layer)
    layers[1]["c"][:, 5] = torch.tensor(-depth + rng.normal(scale=0.1, size=len(data)), dtype=torch.float32)
    ranked = {r.feature: r for r in rank_neurons(Trace(data.encode(), "lstm", 8, layers, 0.0), features, top=3)}
    best = ranked["bracket_depth"].best[0]
    assert (best.layer, best.quantity, best.neuron) == (1, "c", 5) and best.r < -0.95
    assert ranked["in_comment"].constant and ranked["in_comment"].best == []  # no comment in the text
    assert ranked["indent_depth"].constant  # every line is indented alike
    assert len(ranked["column"].best) == 3 and abs(ranked["column"].best[0].r) < 0.5
    only_h = rank_neurons(Trace(data.encode(), "lstm", 8, layers, 0.0), features, layers=[1], quantities=["h"])
    assert all(s.layer == 1 and s.quantity == "h" for r in only_h for s in r.best)
