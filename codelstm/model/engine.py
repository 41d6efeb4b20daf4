"""Inference over many requests at once: cached, chunked prefill, then batched beam steps.

`InferenceEngine.iterate(jobs)` does one round of work for a set of jobs: every job still reading its
prefix advances by one chunk, and every job in search gets one byte further in a single batched LSTM
step shared by all of them. Jobs may join or leave between rounds (continuous batching); the caller
(the server's worker thread, or `run` for scripts and tests) owns the loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from codelstm.model.cache import Checkpoint, StateCache
from codelstm.model.generate import Completion, Search, SearchSpec, prefill, step_searches
from codelstm.model.network import ByteLM, State

CONTEXT_TAIL = 256  # bytes of prefix the search rules look at (indentation, identifier state)


@dataclass
class EngineRequest:
    prefix: bytes
    spec: SearchSpec
    document_id: str | None = None


@dataclass
class EngineResult:
    completions: list[Completion]
    prefix_chars: int
    fed_chars: int
    cached_chars: int
    generated_chars: int


@dataclass
class Job:
    request: EngineRequest
    text: bytes  # what the model reads: the prefix, cut to the cold cap where there is no document id
    position: int  # bytes of `text` already read
    checkpoint: Checkpoint | None  # (state, logits) after `position` bytes; None before the first byte
    cached_chars: int
    fed_chars: int = 0
    new_checkpoints: dict[int, Checkpoint] = field(default_factory=dict)
    search: Search | None = None
    result: EngineResult | None = None

    @property
    def done(self) -> bool:
        return self.result is not None


def cut_cold_prefix(prefix: bytes, cap: int) -> bytes:
    """The last `cap` bytes, starting at a line start when one is near, so the model starts cleanly."""
    if len(prefix) <= cap:
        return prefix
    tail = prefix[-cap:]
    newline = tail.find(b"\n")
    return tail[newline + 1:] if 0 <= newline < cap // 2 else tail


class InferenceEngine:
    def __init__(self, model: ByteLM, cache: StateCache | None = None, cold_prefix_cap: int = 4096,
                 document_prefix_cap: int = 1 << 20, prefill_chunk: int = 512) -> None:
        self.model = model.eval()
        self.cache = cache
        self.cold_prefix_cap = cold_prefix_cap
        self.document_prefix_cap = document_prefix_cap
        self.prefill_chunk = prefill_chunk

    def start(self, request: EngineRequest) -> Job:
        doc = request.document_id if self.cache is not None else None
        text = cut_cold_prefix(request.prefix, self.document_prefix_cap if doc else self.cold_prefix_cap)
        offset, checkpoint = (0, None)
        if doc is not None and len(text) == len(request.prefix):
            offset, checkpoint = self.cache.lookup(doc, text)
        return Job(request, text, offset, checkpoint, cached_chars=offset)

    @torch.no_grad()
    def iterate(self, jobs: list[Job]) -> None:
        """One round: a prefill chunk for reading jobs, one batched search step for searching jobs."""
        for job in jobs:
            if job.search is None and not job.done:
                self._prefill_chunk(job)
        searching = [j for j in jobs if j.search is not None and not j.done]
        if searching:
            step_searches(self.model, [j.search for j in searching])
            for job in searching:
                if job.search.done:
                    self._finish(job)

    def _prefill_chunk(self, job: Job) -> None:
        interval = self.cache.interval if self.cache is not None else self.prefill_chunk
        if job.checkpoint is None:  # a fresh document: read its start marker (and the first bytes)
            end = min(len(job.text), interval)
            state, logits = prefill(self.model, job.text[:end])
        else:
            end = min(len(job.text), (job.position // interval + 1) * interval, job.position + self.prefill_chunk)
            state, logits = job.checkpoint
            if end > job.position:
                state, logits = prefill(self.model, job.text[job.position:end], state)
        job.fed_chars += end - job.position
        job.position, job.checkpoint = end, (state, logits)
        if end % interval == 0 or end == len(job.text):
            job.new_checkpoints[end] = job.checkpoint
        if end == len(job.text):
            self._store(job)
            state, logits = job.checkpoint
            job.search = Search(job.request.spec, state, logits, job.text[-CONTEXT_TAIL:])
            if job.search.done:
                self._finish(job)

    def _store(self, job: Job) -> None:
        doc = job.request.document_id
        if self.cache is None or doc is None or len(job.text) != len(job.request.prefix):
            return
        self.cache.store(doc, job.text, job.new_checkpoints)

    def _finish(self, job: Job) -> None:
        results = job.search.results()
        job.result = EngineResult(
            completions=results,
            prefix_chars=len(job.request.prefix),
            fed_chars=job.fed_chars,
            cached_chars=job.cached_chars,
            generated_chars=sum(len(c.text.encode("utf-8")) for c in results),
        )

    def run(self, requests: list[EngineRequest]) -> list[EngineResult]:
        """All requests to completion, batched together (scripts, tests, the terminal command)."""
        jobs = [self.start(r) for r in requests]
        while not all(j.done for j in jobs):
            self.iterate([j for j in jobs if not j.done])
        return [j.result for j in jobs]
