"""A failing job fails alone: in the engine's rounds, in the batcher, and when the worker thread itself dies.

The failing jobs are real requests that the HTTP edge now rejects (a lone surrogate in a stop string, a
temperature that underflows sampling), handed to the engine directly: they fail where they used to take
their batch-mates with them (issue 13).
"""

from __future__ import annotations

import asyncio
import time

import pytest
import torch

from codelstm.model.engine import EngineRequest
from codelstm.model.generate import SearchSpec
from codelstm.server.batcher import Batcher, JobFailed

GOOD = [
    EngineRequest(b"# module 1\n\ndef function_2(value):\n    return ", SearchSpec(mode="line", n=3)),
    EngineRequest(b"def func", SearchSpec(mode="token", n=5)),
    EngineRequest(b"# module 4\n\n", SearchSpec(mode="block", max_chars=120, n=2)),
    EngineRequest(b"def function_3(value):\n    return value", SearchSpec(temperature=0.8, seed=7, n=2)),
]
FAILS_STARTING_SEARCH = EngineRequest(b"def f(x):\n    return ", SearchSpec(stop=("\ud800",)))  # cannot be encoded
FAILS_SAMPLING = EngineRequest(b"def f(x):\n    return ", SearchSpec(temperature=1e-45, n=2))  # multinomial raises


def outcome(result):
    return [(c.text, c.logprob, c.finish_reason) for c in result.completions]


def test_failing_jobs_fail_alone_and_good_ones_match_running_alone(engine):
    alone = [outcome(engine.run([r])[0]) for r in GOOD]
    jobs = [engine.start(r) for r in [GOOD[0], FAILS_STARTING_SEARCH, GOOD[1], GOOD[2], FAILS_SAMPLING, GOOD[3]]]
    rounds = 0
    while not all(j.done for j in jobs):
        engine.iterate([j for j in jobs if not j.done])
        rounds += 1
    assert isinstance(jobs[1].error, UnicodeEncodeError) and jobs[1].result is None
    assert isinstance(jobs[4].error, RuntimeError) and jobs[4].result is None  # from torch.multinomial
    good = [jobs[0], jobs[2], jobs[3], jobs[5]]
    assert all(j.error is None for j in good)
    if engine.model.dtype == torch.bfloat16:
        assert [outcome(j.result) for j in good] == alone  # bitwise: text, log-probability, reason
    else:  # float32 sums a batch in another order: equal to the 4th decimal the API reports
        assert [[(t, round(lp, 4), f) for t, lp, f in outcome(j.result)] for j in good] == \
               [[(t, round(lp, 4), f) for t, lp, f in o] for o in alone]


def test_a_failing_batched_model_call_is_retried_job_by_job(engine, monkeypatch):
    """If the batched LSTM step itself raises, every job is stepped alone and only the one whose own step
    raises fails (here the model can step job 0's rows and nothing else)."""
    jobs = [engine.start(r) for r in GOOD[:2]]
    engine.iterate(jobs)  # read the prefixes, start the searches
    rows = [len(j.search.pending) for j in jobs]
    assert rows[0] != rows[1]
    real_step, calls = engine.model_step, []

    def step(byte_ids, state=None):
        calls.append(byte_ids.numel())
        if byte_ids.numel() != rows[0]:
            raise RuntimeError("injected: cannot step these rows")
        return real_step(byte_ids, state)

    monkeypatch.setattr(engine, "model_step", step)
    engine.iterate(jobs)
    assert calls == [sum(rows), rows[0], rows[1]]  # the batch, then each job alone
    assert jobs[0].error is None and isinstance(jobs[1].error, RuntimeError)
    monkeypatch.undo()
    while not jobs[0].done:
        engine.iterate([jobs[0]])
    assert outcome(jobs[0].result) == outcome(engine.run([GOOD[0]])[0])


def test_batcher_answers_good_requests_while_bad_ones_fail(engine):
    async def scenario():
        batcher = Batcher(engine, window_s=0.05)
        batcher.start()
        try:
            return await asyncio.gather(*[batcher.submit(r, 30) for r in
                                          [GOOD[0], FAILS_STARTING_SEARCH, GOOD[1], FAILS_SAMPLING, GOOD[2]]],
                                        return_exceptions=True), batcher.alive
        finally:
            batcher.stop()

    alone = [outcome(engine.run([r])[0]) for r in GOOD[:3]]
    results, alive = asyncio.run(scenario())
    assert isinstance(results[1], JobFailed) and isinstance(results[3], JobFailed)
    assert [outcome(results[i].result) for i in (0, 2, 4)] == alone or engine.model.dtype != torch.bfloat16
    assert all(not isinstance(results[i], Exception) for i in (0, 2, 4))
    assert alive


class _Job:
    def __init__(self, request):
        self.request, self.result, self.error, self.search = request, None, None, None

    @property
    def done(self):
        return self.result is not None or self.error is not None


class DyingEngine:
    """A stand-in engine whose first round kills the thread that runs it (SystemExit is not an Exception)."""

    def __init__(self):
        self.rounds = 0

    def start(self, request):
        return _Job(request)

    def iterate(self, jobs):
        self.rounds += 1
        if self.rounds == 1:
            raise SystemExit("injected: the worker thread dies")
        for job in jobs:
            job.result = f"done {job.request}"

    def abandon(self, job):
        pass


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the injected death
def test_dead_worker_is_restarted_and_serves_again():
    async def scenario():
        batcher = Batcher(DyingEngine(), window_s=0, restart_delay_s=0.5)
        batcher.start()
        try:
            first = await asyncio.gather(batcher.submit("a", 5), return_exceptions=True)
            await asyncio.sleep(0.1)
            down = batcher.alive
            deadline = time.monotonic() + 5
            while not batcher.alive and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            second = await batcher.submit("b", 5)
            return first[0], down, batcher.alive, batcher.restarts, second
        finally:
            batcher.stop()

    first, down, alive, restarts, second = asyncio.run(scenario())
    assert isinstance(first, JobFailed)  # the request the worker died holding is answered, not left hanging
    assert down is False and alive is True and restarts == 1
    assert second.result == "done b"


def test_a_search_whose_context_mixing_fails_fails_alone_and_its_batch_mates_mix_as_alone(monkeypatch):
    """The context models of all searches of a round are mixed in one call: when one document's mixing raises
    (injected here), the round is re-run search by search and only that search fails; the others, with
    context, return bitwise what they return alone."""
    from codelstm.model import load_checkpoint
    from codelstm.model.engine import InferenceEngine
    from codelstm.model.mixer import DocumentMixer, MixerWeights
    from codelstm.model.network import native_bfloat16
    from codelstm.paths import DEFAULT_MODEL

    model, _ = load_checkpoint(DEFAULT_MODEL)
    if native_bfloat16():
        model = model.to(torch.bfloat16)
    engine = InferenceEngine(model, cache=None, step_onednn=model.dtype == torch.bfloat16, prefill_wait_s=0,
                             mixer=MixerWeights.load(DEFAULT_MODEL))
    requests = [EngineRequest(b"import argparse\n\nparser = argparse.", SearchSpec(mode="token", n=5)),
                EngineRequest(b"import os\n\npath = os.path.", SearchSpec(mode="token", n=3)),
                EngineRequest(b"def read(path):\n    with open(path) as f:\n        return f.", SearchSpec(mode="line", n=2)),
                EngineRequest(b"import numpy as np\n\nx = np.", SearchSpec(temperature=0.7, seed=3, n=2))]
    alone = [outcome(engine.run([r])[0]) for r in requests]
    real = DocumentMixer._step_inputs

    def step_inputs(mixer, generated):
        if mixer.view.document.startswith(b"import os") and any(generated):  # in a round, not at its start
            raise RuntimeError("injected: this document's context models fail")
        return real(mixer, generated)

    monkeypatch.setattr(DocumentMixer, "_step_inputs", step_inputs)
    jobs = [engine.start(r) for r in requests]
    while not all(j.done for j in jobs):
        engine.iterate([j for j in jobs if not j.done])
    assert isinstance(jobs[1].error, RuntimeError) and jobs[1].result is None
    good = [0, 2, 3]
    assert all(jobs[i].error is None for i in good)
    if engine.model.dtype == torch.bfloat16:
        assert [outcome(jobs[i].result) for i in good] == [alone[i] for i in good]
    else:
        assert [[(t, round(lp, 4), f) for t, lp, f in outcome(jobs[i].result)] for i in good] == \
               [[(t, round(lp, 4), f) for t, lp, f in alone[i]] for i in good]
