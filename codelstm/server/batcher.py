"""Continuous batching: requests wait briefly in a queue, one worker thread advances them all together.

An async request becomes a Future; the worker thread takes new requests between rounds, runs one
`InferenceEngine.iterate` round over every active job (a prefill chunk or one batched beam step each),
and resolves the futures of finished jobs on their event loop. The event loop never runs torch.
Swapping the engine (model reload) affects only requests that start afterwards: jobs in flight
finish on the engine they started on.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

from codelstm.model.engine import EngineRequest, EngineResult, InferenceEngine, Job

log = logging.getLogger("codelstm.batcher")


class Overloaded(Exception):
    """The queue is full; the client should retry later."""


class DeadlineExceeded(Exception):
    """The request did not finish before its deadline."""


@dataclass
class _Item:
    request: EngineRequest
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    enqueued: float
    deadline: float
    engine: InferenceEngine | None = None
    job: Job | None = None
    started: float | None = None


@dataclass
class Outcome:
    result: EngineResult
    queue_ms: float
    compute_ms: float


class Batcher:
    def __init__(self, engine: InferenceEngine, max_queue: int = 256, max_batch: int = 64,
                 window_s: float = 0.002, on_round: Callable[[int], None] | None = None) -> None:
        self.engine = engine
        self.max_queue = max_queue
        self.max_batch = max_batch
        self.window_s = window_s
        self.on_round = on_round
        self._incoming: deque[_Item] = deque()
        self._active: list[_Item] = []
        self._cond = threading.Condition()
        self._running = False
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._loop, name="codelstm-batcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._running = False
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def swap_engine(self, engine: InferenceEngine) -> None:
        """New requests go to `engine`; in-flight ones finish where they started."""
        with self._cond:
            self.engine = engine

    @property
    def depth(self) -> int:
        return len(self._incoming) + len(self._active)

    # -- the async side ------------------------------------------------------------------------

    async def submit(self, request: EngineRequest, timeout_s: float) -> Outcome:
        loop = asyncio.get_running_loop()
        now = time.perf_counter()
        item = _Item(request, loop.create_future(), loop, now, now + timeout_s)
        with self._cond:
            if self.depth >= self.max_queue:
                raise Overloaded(f"{self.depth} requests in flight (limit {self.max_queue})")
            self._incoming.append(item)
            self._cond.notify()
        try:
            return await asyncio.wait_for(asyncio.shield(item.future), timeout=timeout_s + 1.0)
        except asyncio.TimeoutError:
            item.deadline = 0.0  # the worker drops it at the next round
            raise DeadlineExceeded(f"no result within {timeout_s:.1f} s") from None

    # -- the worker thread ---------------------------------------------------------------------

    def _admit(self) -> None:
        """Move queued requests into the active set (under the lock), waiting a window for company."""
        with self._cond:
            while self._running and not self._incoming and not self._active:
                self._cond.wait()
            if self._incoming and not self._active and self.window_s > 0:
                self._cond.wait(timeout=self.window_s)
            while self._incoming and len(self._active) < self.max_batch:
                item = self._incoming.popleft()
                item.engine = self.engine
                self._active.append(item)

    def _loop(self) -> None:
        while self._running:
            self._admit()
            if not self._running:
                break
            now = time.perf_counter()
            for item in self._active:
                if item.job is None:
                    item.started = now
                    try:
                        item.job = item.engine.start(item.request)
                    except Exception as e:  # noqa: BLE001 - a bad request must not stop the worker
                        self._fail(item, e)
            self._active = [i for i in self._active if not i.future.done()]
            expired = [i for i in self._active if now > i.deadline]
            for item in expired:
                self._fail(item, DeadlineExceeded("deadline passed before the completion finished"))
            self._active = [i for i in self._active if i not in expired]
            by_engine: dict[int, list[_Item]] = {}
            for item in self._active:
                by_engine.setdefault(id(item.engine), []).append(item)
            for items in by_engine.values():
                try:
                    items[0].engine.iterate([i.job for i in items])
                except Exception as e:  # noqa: BLE001 - fail this round's requests, keep serving
                    log.exception("inference round failed")
                    for item in items:
                        self._fail(item, e)
                    continue
            if self.on_round:
                self.on_round(len(self._active))
            done_now = time.perf_counter()
            still = []
            for item in self._active:
                if item.future.done():
                    continue
                if item.job.done:
                    outcome = Outcome(item.job.result, (item.started - item.enqueued) * 1000,
                                      (done_now - item.started) * 1000)
                    item.loop.call_soon_threadsafe(_set_result, item.future, outcome)
                else:
                    still.append(item)
            self._active = still
        for item in list(self._incoming) + self._active:
            self._fail(item, RuntimeError("server is shutting down"))

    @staticmethod
    def _fail(item: _Item, error: Exception) -> None:
        item.loop.call_soon_threadsafe(_set_exception, item.future, error)


def _set_result(future: asyncio.Future, value) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future, error: Exception) -> None:
    if not future.done():
        future.set_exception(error)
