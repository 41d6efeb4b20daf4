"""Inference over many requests at once: cached, chunked prefill, then batched beam steps.

`InferenceEngine.iterate(jobs)` does one round of work for a set of jobs: every job still reading its
prefix advances by one chunk, and every job in search gets one byte further in a single batched LSTM
step shared by all of them. Jobs may join or leave between rounds (continuous batching); the caller
(the server's worker thread, or `run` for scripts and tests) owns the loop.

A job that raises fails alone: its error is kept on the job (`Job.error`) and its batch-mates go on.
The batched model calls change no job until they return, so when one raises, every job of the round is
run again on its own and only the one at fault fails. The search rules after a step run as one pass for
all jobs (`generate.advance_searches`), whose shared part changes no search either and is re-run search by
search when it raises; each search's own rules and the cache writes are guarded job by job.

A long prefix read keeps its progress: the states it passes are written to the cache every
`store_every` bytes and when the job is abandoned (deadline, cancellation), so the next request for
the document resumes there instead of starting over.

With mixer weights (the checkpoint's mixer.json), every search mixes the context models over the text
read (and the request's workspace) into the LSTM's distribution (docs/context.md). A document's context
index is kept in the state cache beside its states and rebuilt only when the bytes it does not cover
grow past `CONTEXT_REINDEX`; those recent bytes get a small index of their own per request.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch

from codelstm.model import search_kernels
from codelstm.model.cache import Checkpoint, StateCache, common_prefix_length
from codelstm.model.context import ContextIndex
from codelstm.model.context_view import ContextView
from codelstm.model.generate import (Completion, Progress, Search, SearchSpec, prefill_many, search_step,
                                     step_searches)
from codelstm.model.mixer import DocumentMixer, MixerWeights, compile_kernels
from codelstm.model.network import ByteLM, State, torch_threads, use_onednn
from codelstm.model.stepper import LstmStepper

ONEDNN_FROM = 16  # bytes: shorter reads run faster on ATen's kernel, longer ones on oneDNN's (bench/step_time.py)
STEP_READ_BYTES = 2  # reads this short run on the written-out step, byte by byte (`prefill_many`; measured there)
PREFILL_BATCH = 8  # waiting prefixes that are read at once without waiting longer: batching gains little past this
PARALLEL_ROWS = 16  # beams stepped together from which several threads beat one (bench/step_time.py)
CHEAP_PREFILL = 16  # bytes: a read this short costs about one search step, so it never waits for company
CONTEXT_TAIL = 256  # bytes of prefix the search rules look at (indentation, identifier state)
STORE_EVERY = 1 << 16  # bytes: a long read writes its states to the cache this often (and when abandoned)
CONTEXT_REINDEX = 2048  # bytes a document's cached context index may lag behind before it is rebuilt
CONTEXT_DOCUMENT_CAP = 1 << 18  # bytes of a document the context models see at most (its index: ~128 per byte)


@dataclass
class EngineRequest:
    prefix: bytes
    spec: SearchSpec
    document_id: str | None = None
    workspace: ContextIndex | None = None  # the workspace's context index, when the request has one


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
    error: Exception | None = None  # what failed this job alone; its batch-mates are unaffected
    stored_to: int = 0  # bytes of `text` whose states were last written to the cache

    @property
    def done(self) -> bool:
        """Finished, with a result or an error: no more rounds for it."""
        return self.result is not None or self.error is not None

    def progress(self) -> Progress | None:
        """What the search has decided so far (for streaming); None while reading the prefix or once done."""
        return self.search.progress() if self.search is not None and not self.done else None


def cut_cold_prefix(prefix: bytes, cap: int) -> bytes:
    """The last `cap` bytes, starting at a line start when one is near, so the model starts cleanly."""
    if len(prefix) <= cap:
        return prefix
    tail = prefix[-cap:]
    newline = tail.find(b"\n")
    return tail[newline + 1:] if 0 <= newline < cap // 2 else tail


class InferenceEngine:
    def __init__(self, model: ByteLM, cache: StateCache | None = None, cold_prefix_cap: int = 4096,
                 document_prefix_cap: int = 1 << 20, prefill_chunk: int = 512, sequence_onednn: bool = True,
                 step_onednn: bool = False, prefill_wait_s: float = 0.1, store_every: int = STORE_EVERY,
                 name: str = "model", mixer: MixerWeights | None = None, written_out_step: bool = True) -> None:
        self.model = model.eval()
        # search steps: the written-out LSTM step where the model allows it (2x faster for a few rows),
        # else nn.LSTM on the kernel `step_onednn` names
        self.model_step = search_step(model) if written_out_step else model.step
        # a keystroke's byte or two are read by that step too where it is the written-out one (`prefill_many`)
        self.read_step = self.model_step if isinstance(self.model_step, LstmStepper) else None
        self.mixer = mixer  # None: the LSTM alone
        search_kernels.compile_kernels()
        if mixer is not None:
            compile_kernels(mixer)
        # a bfloat16 model reads every prefix on oneDNN: ATen's bfloat16 LSTM is the slow one at any length
        self._onednn_from = None if not sequence_onednn else 1 if model.dtype == torch.bfloat16 else ONEDNN_FROM
        self.step_onednn = step_onednn
        self.prefill_wait_s = prefill_wait_s
        self._last_prefill = 0.0
        self.cache = cache
        self.cold_prefix_cap = cold_prefix_cap
        self.document_prefix_cap = document_prefix_cap
        self.prefill_chunk = prefill_chunk
        self.store_every = store_every
        self.name = name  # what responses call the model that computed them

    def start(self, request: EngineRequest) -> Job:
        doc = request.document_id if self.cache is not None else None
        text = cut_cold_prefix(request.prefix, self.document_prefix_cap if doc else self.cold_prefix_cap)
        offset, checkpoint = (0, None)
        if doc is not None and len(text) == len(request.prefix):
            offset, checkpoint = self.cache.lookup(doc, text)
        return Job(request, text, offset, checkpoint, cached_chars=offset, stored_to=offset)

    @torch.no_grad()
    def iterate(self, jobs: list[Job]) -> None:
        """One round: a prefill chunk for every reading job (batched), one batched search step for the rest."""
        reading = [j for j in jobs if j.search is None and not j.done]
        searching = [j for j in jobs if j.search is not None and not j.done]
        due = self._due_for_reading(reading, searching) if reading else []
        if due:
            self._isolated(self._prefill_round, due)
            searching = [j for j in jobs if j.search is not None and not j.done]
        if searching:
            self._isolated(self._step_round, searching)

    @staticmethod
    def _isolated(round_fn, jobs: list[Job]) -> None:
        """Run a batched round; if its batched model call raises, run each job alone so only the one at
        fault fails. Safe because the batched calls change no job before they return."""
        try:
            round_fn(jobs)
        except Exception as e:  # noqa: BLE001 - one job's failure must not fail its batch-mates
            if len(jobs) == 1:
                jobs[0].error = e
                return
            for job in jobs:
                try:
                    round_fn([job])
                except Exception as alone:  # noqa: BLE001
                    job.error = alone

    def _step_round(self, jobs: list[Job]) -> None:
        """One batched LSTM step for every live beam of every job, then the search rules of all jobs in one
        pass (`generate.step_searches`), a job whose rules fail failing alone."""

        def failed(i: int, error: Exception) -> None:
            jobs[i].error = error

        step_searches(self.model, [j.search for j in jobs], step=self._search_step, on_error=failed)
        for job in jobs:
            if job.search.done and not job.done:
                try:
                    self._finish(job)
                except Exception as e:  # noqa: BLE001
                    job.error = e

    def _search_step(self, inputs: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """The LSTM step of a search round, with the kernels and threads that suit its row count."""
        threads = 1 if inputs.size(0) < PARALLEL_ROWS else torch.get_num_threads()
        with use_onednn(self.step_onednn), torch_threads(threads):
            return self.model_step(inputs, state)

    def _due_for_reading(self, reading: list[Job], searching: list[Job]) -> list[Job]:
        """Which prefixes to read this round; the others let searches step while they gather.

        A prefill chunk costs as much as dozens of search steps, and read one request at a time it would
        stall every search in the batch each round. So while searches run, new prefixes wait up to
        `prefill_wait_s` (or until enough wait to fill a batch) and are then read together in one batched
        forward. A prefix that needs only a few bytes (a cached document one keystroke on) is as cheap
        as a step and never waits.
        """
        if not searching or len(reading) >= PREFILL_BATCH or time.monotonic() - self._last_prefill >= self.prefill_wait_s:
            self._last_prefill = time.monotonic()
            return reading
        return [job for job in reading
                if job.checkpoint is not None and self._chunk_end(job) - job.position <= CHEAP_PREFILL]

    @property
    def checkpoint_interval(self) -> int:
        """Bytes between the states a document keeps: the cache's interval, else the prefill chunk."""
        return self.cache.interval if self.cache is not None else self.prefill_chunk

    def _chunk_end(self, job: Job) -> int:
        """Where this round's chunk of `job` ends: the next checkpoint boundary, at most `prefill_chunk` on."""
        interval = self.checkpoint_interval
        if job.checkpoint is None:  # a fresh document: its start marker and the first bytes
            return min(len(job.text), interval)
        return min(len(job.text), (job.position // interval + 1) * interval, job.position + self.prefill_chunk)

    def _prefill_round(self, jobs: list[Job]) -> None:
        ends = [self._chunk_end(job) for job in jobs]
        moving = [(job, end) for job, end in zip(jobs, ends) if end > job.position or job.checkpoint is None]
        read = prefill_many(self.model, [job.text[job.position:end] for job, end in moving],
                            [job.checkpoint[0] if job.checkpoint else None for job, _ in moving],
                            onednn_from=self._onednn_from, step=self.read_step, step_up_to=STEP_READ_BYTES)
        for (job, end), checkpoint in zip(moving, read):
            job.fed_chars += end - job.position
            job.position, job.checkpoint = end, checkpoint
        for job in jobs:
            try:
                self._after_read(job)
            except Exception as e:  # noqa: BLE001 - e.g. a stop string the search cannot encode
                job.error = e

    def _after_read(self, job: Job) -> None:
        """Keep the state just reached; at the end of the prefix, store the document and start the search."""
        end = job.position
        if end % self.checkpoint_interval == 0 or end == len(job.text):
            job.new_checkpoints[end] = job.checkpoint
        if end < len(job.text):
            if end - job.stored_to >= self.store_every:
                self._store(job)
            return
        self._store(job)
        state, logits = job.checkpoint
        job.search = Search(job.request.spec, state, logits, job.text[-CONTEXT_TAIL:], self._document_mixer(job))
        if job.search.done:
            self._finish(job)

    def _document_mixer(self, job: Job) -> DocumentMixer | None:
        """The context models over the text read (and the workspace), with the fitted weights (no online
        adaptation: it needs the LSTM's score of every prefix byte; docs/context.md measures what it gives)."""
        if self.mixer is None:
            return None
        config = self.mixer.config
        text = job.text
        if len(text) > CONTEXT_DOCUMENT_CAP:  # a window whose start moves in steps, so its index stays usable
            step = CONTEXT_DOCUMENT_CAP // 4
            start = math.ceil((len(text) - CONTEXT_DOCUMENT_CAP) / step) * step
            text = text[start:]
        doc = job.request.document_id
        index = None
        if doc is not None and self.cache is not None and len(job.text) == len(job.request.prefix):
            index = self.cache.context(doc)
            if index is not None and index.config != config:
                index = None
            if index is None or len(text) - common_prefix_length(index.data, text) > CONTEXT_REINDEX:
                index = ContextIndex.build(text, config)
                self.cache.store_context(doc, index, index.nbytes)
        workspace = job.request.workspace
        if workspace is not None and workspace.config != config:  # indexed for the model before a reload
            workspace = None
        return DocumentMixer(self.mixer, ContextView(config, text, index, workspace))

    def abandon(self, job: Job) -> None:
        """The job leaves unfinished (deadline, cancellation): keep what it read for the next request."""
        if job.search is None and job.position > job.stored_to:
            self._store(job)

    def _store(self, job: Job) -> None:
        """Write the job's new states to the cache; the document's text is the whole prefix, so a later
        request resumes at the furthest state stored before its first differing byte."""
        doc = job.request.document_id
        if self.cache is None or doc is None or len(job.text) != len(job.request.prefix) or not job.new_checkpoints:
            return
        self.cache.store(doc, job.text, job.new_checkpoints)
        job.new_checkpoints = {}
        job.stored_to = job.position

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
        failed = next((j.error for j in jobs if j.error is not None), None)
        if failed is not None:
            raise failed
        return [j.result for j in jobs]
