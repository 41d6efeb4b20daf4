"""The engine's `context_thread`: context lookups computed on a second thread while the LSTM steps the
same beams give the completions the engine gives without it, and a lookup that raises there fails its
own request only."""

from __future__ import annotations

import threading

import pytest

from codelstm.model.cache import StateCache
from codelstm.model.context import ContextIndex
from codelstm.model.context_view import ContextView
from codelstm.model.engine import EngineRequest, InferenceEngine
from codelstm.model.generate import Search, SearchSpec
from codelstm.model.mixer import MixerWeights
from codelstm.paths import DEFAULT_MODEL

SOURCE = (
    "import os\n\n\ndef load_settings_file(path):\n    with open(path) as handle:\n        return handle.read()\n\n\n"
    "def save_settings_file(path, text):\n    with open(path, 'w') as handle:\n        handle.write(text)\n\n\n"
    "class SettingsStore:\n    def __init__(self, root):\n        self.root = root\n\n    def read(self, name):\n"
    "        return load_settings_file(os.path.join(self.root, name))\n\n    def write(self, name, text):\n"
)
WORKSPACE = b"def refresh_settings_cache(store):\n    return store.read('cache')\n\x00"


def requests(workspace: ContextIndex) -> list[EngineRequest]:
    """Typists in three documents, with and without a workspace, in token and line mode."""
    return [
        EngineRequest((SOURCE + "        save_").encode(), SearchSpec(mode="token", n=3, max_chars=24), "a"),
        EngineRequest((SOURCE + "        ").encode(), SearchSpec(mode="line", n=2, max_chars=48), "b", workspace),
        EngineRequest((SOURCE + "        refresh_").encode(), SearchSpec(mode="token", n=3, max_chars=24), "c", workspace),
    ]


@pytest.fixture(scope="module")
def weights() -> MixerWeights:
    return MixerWeights.load(DEFAULT_MODEL)


def test_lookups_beside_the_step_run_on_the_context_thread_and_give_the_same_completions(
        bundled, one_thread, weights, monkeypatch):
    threads: set[str] = set()
    context_ahead = Search.context_ahead

    def recorded(search: Search):
        threads.add(threading.current_thread().name)
        return context_ahead(search)

    monkeypatch.setattr(Search, "context_ahead", recorded)
    workspace = ContextIndex.build(WORKSPACE, weights.config)
    alone = InferenceEngine(bundled, StateCache(), mixer=weights).run(requests(workspace))
    beside = InferenceEngine(bundled, StateCache(), mixer=weights, context_thread=True).run(requests(workspace))
    assert threads and all(name.startswith("codelstm-context") for name in threads)
    for a, b in zip(alone, beside):
        assert [c.text for c in b.completions] == [c.text for c in a.completions]
        assert [c.logprob for c in b.completions] == pytest.approx([c.logprob for c in a.completions], abs=1e-5)
    assert any("settings" in c.text for c in beside[2].completions)  # the workspace's name was in reach


def test_a_lookup_failing_on_the_context_thread_fails_its_request_alone(bundled, one_thread, weights, monkeypatch):
    """Fault injection: the view of one document raises during a search step (not while the job starts)."""
    predict_many = ContextView.predict_many

    def failing_in_search(view: ContextView, generated: list[bytes]):
        if view.document.endswith(b"save_") and any(generated):
            raise RuntimeError("lookup failed")
        return predict_many(view, generated)

    monkeypatch.setattr(ContextView, "predict_many", failing_in_search)
    engine = InferenceEngine(bundled, StateCache(), mixer=weights, context_thread=True)
    jobs = [engine.start(r) for r in requests(ContextIndex.build(WORKSPACE, weights.config))]
    while not all(j.done for j in jobs):
        engine.iterate([j for j in jobs if not j.done])
    assert isinstance(jobs[0].error, RuntimeError)
    assert all(j.error is None and j.result.completions for j in jobs[1:])
