"""A running search's decided text (what streaming sends early) is never taken back: every result starts
with it, it only grows, and the results it promises exist."""

from __future__ import annotations

import pytest
import torch

from codelstm.model import ByteLM, ModelConfig
from codelstm.model.generate import Progress, Search, SearchSpec, prefill, step_searches


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/model/conftest.py


@pytest.fixture(scope="module")
def random_model():
    torch.manual_seed(0)
    return ByteLM(ModelConfig(embed_dim=8, hidden_size=32, num_layers=1)).eval()


def run_with_progress(model, prefix: str, spec: SearchSpec) -> tuple[list[Progress], list]:
    data = prefix.encode("utf-8")
    state, logits = prefill(model, data)
    search = Search(spec, state, logits, data[-256:])
    seen = []
    while not search.done:
        seen.append(search.progress())
        step_searches(model, [search])
    return seen, search.results()


def check(seen: list[Progress], results: list) -> None:
    for before, after in zip(seen, seen[1:]):
        assert after.text.startswith(before.text), (before, after)
        assert after.results >= before.results
    last = seen[-1]
    assert len(results) >= last.results
    for c in results:
        assert c.text.startswith(last.text), (last.text, c.text)


PREFIXES = ["import os\n\npath = os.path.", "def read(path):\n    with open(path) as f:\n        ",
            "class Config:\n    def __init__(self, name):\n        self.name = name\n", "# é café\nnom = 'caf"]


@pytest.mark.parametrize("spec", [
    SearchSpec(mode="token", n=3, max_chars=24),
    SearchSpec(mode="line", n=1, max_chars=64, stop=("):", "th")),
    SearchSpec(mode="line", n=3, max_chars=64, suffix=")\n"),
    SearchSpec(mode="block", n=1, max_chars=200),
    SearchSpec(mode="block", n=2, max_chars=120, stop=("\n\n\n", "return")),
])
def test_beam_search_decided_text_is_never_taken_back(bundled, spec):
    for prefix in PREFIXES:
        seen, results = run_with_progress(bundled, prefix, spec)
        check(seen, results)


@pytest.mark.parametrize("mode", ["line", "block"])
def test_a_stop_string_the_search_runs_into_is_never_sent(bundled, mode):
    """The stop is cut from the middle of what the search would say without it: its first bytes are
    generated (and must be held back) before its last one cuts them off."""
    for prefix in PREFIXES:
        _, (full, *_) = run_with_progress(bundled, prefix, SearchSpec(mode=mode, n=1, max_chars=100))
        stop = full.text[len(full.text) // 2:][:4]
        if len(stop.strip()) < 2:
            continue
        seen, results = run_with_progress(bundled, prefix, SearchSpec(mode=mode, n=1, max_chars=100, stop=(stop,)))
        check(seen, results)


def test_a_block_completion_decides_text_before_its_search_ends(bundled):
    seen, results = run_with_progress(bundled, PREFIXES[2], SearchSpec(mode="block", n=1, max_chars=200))
    early = [p for p in seen[: len(seen) // 2] if p.text]
    assert early and early[0].results == 1 and len(results[0].text) > len(early[0].text)


@pytest.mark.parametrize("mode", ["line", "block"])
def test_sampled_bytes_are_decided_as_drawn_less_what_a_stop_could_cut(random_model, mode):
    """A random model draws any byte: multi-byte characters, newlines, dedents, pieces of stop strings."""
    for seed in range(30):
        spec = SearchSpec(mode=mode, n=1, max_chars=80, temperature=1.0, seed=seed, stop=("ab", "é!", "\n  x"))
        seen, results = run_with_progress(random_model, "def f():\n    ", spec)
        check(seen, results)
    seen, _ = run_with_progress(random_model, "x", SearchSpec(mode="line", n=1, max_chars=80, temperature=1.0, seed=1))
    assert len({p.text for p in seen}) > len(seen) // 2  # unstopped sampling decides (nearly) every step


def test_sampling_several_results_shares_only_their_common_start(random_model):
    for seed in range(10):
        spec = SearchSpec(mode="line", n=3, max_chars=40, temperature=1.0, seed=seed)
        seen, results = run_with_progress(random_model, "x = ", spec)
        check(seen, results)
