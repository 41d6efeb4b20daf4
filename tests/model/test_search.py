"""Beam search ranks what it prunes: stopping early never changes the answer (issue 12 item 6, issue 15)."""

from __future__ import annotations

import dataclasses

import pytest

from codelstm.model.generate import SearchSpec, complete
from codelstm.model.mixer import MixerWeights
from codelstm.paths import DEFAULT_MODEL


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/model/conftest.py


PREFIXES = [
    "import argparse\n\nparser = argparse.",
    "import os\n\npath = os.path.",
    "def read(path):\n    with open(path) as f:\n        return f.",
    "class Config:\n    def __init__(self, name):\n        self.",
]


@pytest.mark.parametrize("spec", [
    SearchSpec(mode="token", n=5, max_chars=48),
    SearchSpec(mode="token", n=1, beam_width=1, max_chars=32),
    SearchSpec(mode="token", n=3, beam_width=8, max_chars=24),
    SearchSpec(mode="line", n=3, max_chars=40),
    SearchSpec(mode="block", n=2, max_chars=48),
], ids=lambda s: f"{s.mode}-n{s.n}-w{s.width}")
def test_early_stopped_results_equal_exhaustive_search(bundled, spec):
    for prefix in PREFIXES:
        early = complete(bundled, prefix, spec)
        full = complete(bundled, prefix, dataclasses.replace(spec, exhaustive=True))
        assert [c.text for c in early] == [c.text for c in full], prefix
        assert [c.logprob for c in early] == pytest.approx([c.logprob for c in full], abs=1e-5)
        scores = [c.score for c in early]
        assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("spec", [
    SearchSpec(mode="token", n=5, max_chars=48),
    SearchSpec(mode="token", n=3, beam_width=8, max_chars=24),
], ids=lambda s: f"{s.mode}-n{s.n}-w{s.width}")
def test_with_the_names_model_known_names_rank_first_and_early_stopping_still_changes_nothing(bundled, spec):
    """With the bundled mixer, a token search ranks names nobody wrote after a qualifier the names table knows
    last (`Completion.rank`); it may stop early only where that changes no result."""
    weights = MixerWeights.load(DEFAULT_MODEL)
    ranked_any_unknown = False
    for prefix in [*PREFIXES, "import httpx\n\nwith httpx.", "from dataclasses import ", "import asyncio\n\nlock = asyncio."]:
        early = complete(bundled, prefix, spec, mixer_weights=weights)
        full = complete(bundled, prefix, dataclasses.replace(spec, exhaustive=True), mixer_weights=weights)
        assert [c.text for c in early] == [c.text for c in full], prefix
        ranks = [c.rank for c in early]
        assert ranks == sorted(ranks, reverse=True), prefix
        ranked_any_unknown |= any(c.known is False for c in early)
    if spec.n == 5:  # five places reach past what the table holds: the rule is exercised, not only known names
        assert ranked_any_unknown


def test_argparse_offers_argument_parser_whole_ranked_as_exhaustive_search_ranks_it(bundled):
    """Issue 15: `Argument` and `Parser` were offered instead of `ArgumentParser`: the search pruned the
    `ArgumentP...` beam by raw log-probability (-4.8 < -4.4 for `Argument`, ended by `(`) though its
    length-normalised score, which ranks results, is the best. Now the whole name is offered and the
    early-stopped search ranks it where running every beam to its end does. (Where it ranks against
    `Argument` and `Parser` is the model's preference, which exhaustive search shares: the model of
    2026-11-26 puts both bare names first.)"""
    prefix, spec = "import argparse\n\nparser = argparse.", SearchSpec(mode="token", n=5)
    texts = [c.text for c in complete(bundled, prefix, spec)]
    assert "ArgumentParser" in texts
    assert texts == [c.text for c in complete(bundled, prefix, dataclasses.replace(spec, exhaustive=True))]
