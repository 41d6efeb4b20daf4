"""Continuous batching: requests wait briefly in a queue, one worker thread advances them all together.

An async request becomes a Future; the worker thread takes new requests between rounds, runs one
`InferenceEngine.iterate` round over every active job (a prefill chunk or one batched beam step each),
and resolves the futures of finished jobs on their event loop. The event loop never runs torch.
Swapping the engine (model reload) affects only requests that start afterwards: jobs in flight
finish on the engine they started on.

What may go wrong stays with the request it belongs to: a job that fails fails alone (the engine
isolates it from its batch-mates); a request whose client went away, or that a newer request for the
same document replaced, leaves at the next round and frees its queue slot at once; the worker thread
is supervised, and restarted if anything ever kills it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Hashable

from codelstm.model.engine import EngineRequest, EngineResult, InferenceEngine, Job
from codelstm.model.generate import Progress

log = logging.getLogger("codelstm.batcher")

RESTART_DELAY_S = 1.0  # a dead worker is restarted after this pause (readiness says 503 meanwhile)
COMPANY_MEMORY_S = 1.0  # a lone request waits for company only this soon after the worker last had some


class Overloaded(Exception):
    """The queue is full; the client should retry later."""


class DeadlineExceeded(Exception):
    """The request did not finish before its deadline."""


class Superseded(Exception):
    """A newer request for the same document replaced this one."""


class Cancelled(Exception):
    """The client went away; nobody waits for the result."""


class ShuttingDown(Exception):
    """The server stops; the client should retry (on another replica)."""


class JobFailed(Exception):
    """This request's own work raised (its batch-mates were not affected)."""


@dataclass(eq=False)
class _Item:
    request: EngineRequest
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    enqueued: float
    deadline: float
    key: Hashable | None = None  # requests with the same key supersede each other
    engine: InferenceEngine | None = None
    job: Job | None = None
    started: float | None = None
    dropped: Exception | None = None  # set (under the lock) when the request left before finishing
    on_progress: Callable[[Progress], None] | None = None  # streaming: called on `loop` when more is decided
    sent: Progress | None = None  # the last progress handed to on_progress


@dataclass
class Outcome:
    result: EngineResult
    queue_ms: float
    compute_ms: float
    engine: InferenceEngine  # the engine (model) that computed it


class Batcher:
    def __init__(self, engine: InferenceEngine, max_queue: int = 256, max_batch: int = 64,
                 window_s: float = 0.002, on_round: Callable[[int], None] | None = None,
                 restart_delay_s: float = RESTART_DELAY_S) -> None:
        self.engine = engine
        self.max_queue = max_queue
        self.max_batch = max_batch
        self.window_s = window_s
        self.on_round = on_round
        self.restart_delay_s = restart_delay_s
        self.restarts = 0  # times the supervisor had to start a new worker
        self._incoming: deque[_Item] = deque()
        self._active: list[_Item] = []
        self._cond = threading.Condition()
        self._running = False
        self._last_company = -COMPANY_MEMORY_S  # when a round last had more than one request
        self._thread: threading.Thread | None = None
        self._supervisor: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self._running = True
        self._thread = self._spawn()
        self._supervisor = threading.Thread(target=self._supervise, name="codelstm-supervisor", daemon=True)
        self._supervisor.start()

    def _spawn(self) -> threading.Thread:
        thread = threading.Thread(target=self._loop, name="codelstm-batcher", daemon=True)
        thread.start()
        return thread

    def _supervise(self) -> None:
        """Restart the worker if it dies (anything escaping its per-round guard), failing what it held."""
        while self._running:
            self._thread.join()
            if not self._running:
                return
            log.error("the batching worker died; restarting it in %.1f s", self.restart_delay_s)
            with self._cond:
                lost, self._active = self._active, []
            for item in lost:
                self._fail(item, JobFailed("the worker stopped while running this request"))
            time.sleep(self.restart_delay_s)
            if self._running:
                self.restarts += 1
                self._thread = self._spawn()

    @property
    def alive(self) -> bool:
        """The worker thread runs (false from its death until the supervisor restarts it)."""
        return self._running and self._thread is not None and self._thread.is_alive()

    def stop(self, grace_s: float = 0.0) -> None:
        """Let the requests in flight finish for up to `grace_s`, then fail the rest with ShuttingDown."""
        deadline = time.monotonic() + grace_s
        while self.depth and time.monotonic() < deadline and self.alive:
            time.sleep(0.05)
        with self._cond:
            self._running = False
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._cond:
            left, self._active = list(self._incoming) + self._active, []
            self._incoming.clear()
        for item in left:
            self._fail(item, ShuttingDown("the server is shutting down"))

    def swap_engine(self, engine: InferenceEngine) -> None:
        """New requests go to `engine`; in-flight ones finish where they started."""
        with self._cond:
            self.engine = engine

    @property
    def depth(self) -> int:
        """Requests waiting or running (those cancelled or superseded no longer count)."""
        return len(self._incoming) + sum(1 for i in self._active if i.dropped is None)

    # -- the async side ------------------------------------------------------------------------

    async def submit(self, request: EngineRequest, timeout_s: float, key: Hashable | None = None,
                     on_progress: Callable[[Progress], None] | None = None) -> Outcome:
        """Queue a request and wait for it. `key`: a newer request with the same key supersedes this one.
        Cancelling the awaiting task (the client went away) drops the request at the next round.
        `on_progress` (streaming) is called on this event loop whenever the search has decided more text,
        always before the result is set."""
        loop = asyncio.get_running_loop()
        now = time.perf_counter()
        item = _Item(request, loop.create_future(), loop, now, now + timeout_s, key, on_progress=on_progress)
        with self._cond:
            if not self._running:
                raise ShuttingDown("the server is shutting down")
            if key is not None:
                self._supersede(key)
            if self.depth >= self.max_queue:
                raise Overloaded(f"{self.depth} requests in flight (limit {self.max_queue})")
            self._incoming.append(item)
            self._cond.notify()
        try:
            return await asyncio.wait_for(asyncio.shield(item.future), timeout=timeout_s + 1.0)
        except asyncio.TimeoutError:
            self._drop(item, DeadlineExceeded(f"no result within {timeout_s:.1f} s"))
            raise DeadlineExceeded(f"no result within {timeout_s:.1f} s") from None
        except asyncio.CancelledError:
            self._drop(item, Cancelled("the client went away"))
            item.future.cancel()
            raise
        finally:
            # A failure raised here gets a traceback through this frame, whose `item` holds the failure
            # (in its future, or as `dropped`): emptying the locals breaks that cycle, so the request's
            # prefix is freed when the request ends, not at the next full garbage collection.
            item = request = None

    def _supersede(self, key: Hashable) -> None:
        """(Under the lock.) Drop the older requests with this key; they are answered Superseded now."""
        error = Superseded("a newer request for the same document replaced this one")
        for item in [*self._incoming, *self._active]:
            if item.key == key and item.dropped is None:
                item.dropped = error
                self._fail(item, error)
        self._incoming = deque(i for i in self._incoming if i.dropped is None)

    def _drop(self, item: _Item, why: Exception) -> None:
        """The request leaves before finishing: out of the queue now, out of the active set next round."""
        with self._cond:
            if item.dropped is None:
                item.dropped = why
            try:
                self._incoming.remove(item)
            except ValueError:
                pass

    # -- the worker thread ---------------------------------------------------------------------

    def _admit(self) -> None:
        """Move queued requests into the active set (under the lock). A request that arrives to an idle
        worker waits a window for company, but only while clients have lately come together: a lone
        typist would wait every keystroke for nobody, and under load latecomers join the next round."""
        with self._cond:
            while self._running and not self._incoming and not self._active:
                self._cond.wait()
            if self._incoming and not self._active and self.window_s > 0 \
                    and time.monotonic() - self._last_company < COMPANY_MEMORY_S:
                self._cond.wait(timeout=self.window_s)
            while self._incoming and len(self._active) < self.max_batch:
                item = self._incoming.popleft()
                item.engine = self.engine
                self._active.append(item)
            if len(self._active) > 1:
                self._last_company = time.monotonic()

    def _loop(self) -> None:
        while self._running:
            self._admit()
            if not self._running:
                break
            try:
                self._round()
            except Exception as e:  # noqa: BLE001 - a bug in a round fails that round's requests, not the worker
                log.exception("worker round failed")
                with self._cond:
                    failed, self._active = self._active, []
                for item in failed:
                    self._fail(item, JobFailed(f"{type(e).__name__} in the worker"))

    def _round(self) -> None:
        now = time.perf_counter()
        for item in self._active:
            if now > item.deadline and item.dropped is None:
                item.dropped = DeadlineExceeded("deadline passed before the completion finished")
                self._fail(item, item.dropped)
        with self._cond:
            leaving = [i for i in self._active if i.dropped is not None]
            self._active = [i for i in self._active if i.dropped is None]
        for item in leaving:
            if item.job is not None:
                try:
                    item.engine.abandon(item.job)  # keep what it read for the next request of its document
                except Exception:  # noqa: BLE001 - losing that progress costs a re-read, nothing more
                    log.exception("could not keep an abandoned read's progress")
        unstarted = []
        for item in self._active:
            if item.job is None:
                item.started = now
                try:
                    item.job = item.engine.start(item.request)
                except Exception as e:  # noqa: BLE001 - a request that cannot start fails alone
                    log.exception("a request failed to start")
                    self._fail(item, JobFailed(f"{type(e).__name__} while starting"))
                    unstarted.append(item)
        self._active = [i for i in self._active if i not in unstarted]
        by_engine: dict[int, list[_Item]] = {}
        for item in self._active:
            by_engine.setdefault(id(item.engine), []).append(item)
        for items in by_engine.values():
            items[0].engine.iterate([i.job for i in items])  # isolates failing jobs itself
        if self.on_round:
            self.on_round(len(self._active))
        done_now = time.perf_counter()
        still = []
        for item in self._active:
            job = item.job
            if job.error is not None:
                log.error("a request failed", exc_info=job.error)
                self._fail(item, JobFailed(f"{type(job.error).__name__} while completing"))
            elif job.done:
                outcome = Outcome(job.result, (item.started - item.enqueued) * 1000,
                                  (done_now - item.started) * 1000, item.engine)
                if not item.loop.is_closed():
                    item.loop.call_soon_threadsafe(_set_result, item.future, outcome)
            else:
                if item.on_progress is not None:
                    self._report_progress(item)
                still.append(item)
        self._active = still

    @staticmethod
    def _report_progress(item: _Item) -> None:
        """Hand newly decided text to the request's event loop; a failure here ends only its streaming."""
        try:
            progress = item.job.progress()
            if progress is not None and progress != item.sent and not item.loop.is_closed():
                item.sent = progress
                item.loop.call_soon_threadsafe(item.on_progress, progress)
        except Exception:  # noqa: BLE001 - the completion itself goes on; its text arrives with the result
            log.exception("could not report a request's progress")
            item.on_progress = None

    @staticmethod
    def _fail(item: _Item, error: Exception) -> None:
        if not item.loop.is_closed():
            item.loop.call_soon_threadsafe(_set_exception, item.future, error)


def _set_result(future: asyncio.Future, value) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future, error: Exception) -> None:
    if not future.done():
        future.set_exception(error)
