"""What the explorer keeps between requests: trained task models, float copies and recent traces.

The page asks for one neuron, then another, then the overview grid, all on the same text: tracing once
and slicing the cached trace makes each click cheap. Traces are big (an 8 KB text through a 3-layer,
512-unit LSTM is ~150 MB of float32), so the cache is bounded in bytes, least recently used first, and one
trace is computed at a time. Blocking methods are meant to run off the event loop.

Traces are computed, and task models trained, in child processes: both set torch's oneDNN switch (a trace
steps on ATen, training runs oneDNN) and training pins the thread count. Those settings are process-wide,
and flipped from another thread they would put the serving worker's prefix reads on the wrong kernel
(40x slower for bfloat16) or on one thread. The serving process keeps its own.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import subprocess
import sys
import tempfile
import threading
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import torch

from codelstm.explorer import tasks
from codelstm.model import ByteLM, load_checkpoint
from codelstm.model.activations import Trace, trace

TRAIN_TIMEOUT_S = 600  # the longest recipe takes ~20 s on a 2-core CPU; a run past this is stuck


class TrainingBusy(RuntimeError):
    """Another task model is being trained; training is one at a time."""


class TrainingFailed(RuntimeError):
    """The training process did not produce a model."""


class TracerFailed(RuntimeError):
    """The tracing process died (the next trace starts a new one)."""


def _tracer_init() -> None:
    """The tracing child steps one byte at a time: one thread is fastest and leaves the cores to serving."""
    torch.set_num_threads(1)


def trace_nbytes(result: Trace) -> int:
    return sum(t.numel() * t.element_size() for layer in result.layers for t in layer.values())


class Workbench:
    def __init__(self, budget_bytes: int = 512 << 20) -> None:
        self.trained: dict[str, tasks.TrainedTask] = {}
        self.budget = budget_bytes
        self.nbytes = 0  # held by cached traces
        self._traces: OrderedDict[tuple[int, bytes], tuple[ByteLM, Trace, int]] = OrderedDict()
        self._float: tuple[object, ByteLM] | None = None  # (owner, float32 model) for an int8/bfloat16 served one
        self._lock = threading.Lock()
        self._tracing = threading.Lock()  # one trace at a time: each holds its whole size in memory
        self._training = threading.Lock()
        self._tracer: ProcessPoolExecutor | None = None  # started on the first trace

    def trace(self, model: ByteLM, data: bytes) -> Trace:
        """The trace of `data` by `model`, from the cache when the same model read the same text recently."""
        key = (id(model), hashlib.sha256(data).digest())
        with self._tracing:
            with self._lock:
                hit = self._traces.get(key)
                if hit is not None and hit[0] is model:
                    self._traces.move_to_end(key)
                    return hit[1]
            result = self._trace_in_child(model, data)
        self._keep(key, model, result)
        return result

    def _trace_in_child(self, model: ByteLM, data: bytes) -> Trace:
        """`activations.trace` in the tracing process (the model goes there pickled, the trace comes back);
        its errors (TraceError, GateMismatch) are raised here as they were there."""
        if self._tracer is None:
            self._tracer = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                               initializer=_tracer_init)
        try:
            return self._tracer.submit(trace, model, data).result()
        except BrokenProcessPool:
            self._tracer = None
            raise TracerFailed("the tracing process died; try again") from None

    def close(self) -> None:
        """Stop the tracing process (the server's shutdown)."""
        if self._tracer is not None:
            self._tracer.shutdown(cancel_futures=True)
            self._tracer = None

    def _keep(self, key, model: ByteLM, result: Trace) -> None:
        """Cache a trace within the byte budget, evicting the least recently used (one over budget is not kept)."""
        size = trace_nbytes(result)
        with self._lock:
            old = self._traces.pop(key, None)
            if old is not None:
                self.nbytes -= old[2]
            if size > self.budget:
                return
            self._traces[key] = (model, result, size)
            self.nbytes += size
            while self.nbytes > self.budget:
                _, (_, _, evicted) = self._traces.popitem(last=False)
                self.nbytes -= evicted

    def __len__(self) -> int:
        return len(self._traces)

    def float_model(self, owner: object, path: Path) -> ByteLM:
        """The float32 weights of a checkpoint whose served copy is int8 (no gates to read) or bfloat16 (too
        few bits for the gate check); loaded once per served model (`owner`), so a reload is picked up."""
        with self._lock:
            if self._float is not None and self._float[0] is owner:
                return self._float[1]
        model, _ = load_checkpoint(path)
        with self._lock:
            self._float = (owner, model)
        return model

    def train(self, name: str, steps: int | None = None, seed: int = 0) -> tasks.TrainedTask:
        """Train a task model in a child process and keep it under its name; raises TrainingBusy while another
        one trains, KeyError for an unknown task, TrainingFailed when the child fails."""
        if name not in tasks.TASKS:
            raise KeyError(f"unknown task {name!r}; tasks: {', '.join(tasks.TASKS)}")
        if not self._training.acquire(blocking=False):
            raise TrainingBusy("a task model is being trained; try again when it is done")
        try:
            result = _train_in_child(name, steps, seed)
        finally:
            self._training.release()
        self.trained[name] = result
        return result


def _train_in_child(name: str, steps: int | None, seed: int) -> tasks.TrainedTask:
    """`codelstm explore train-task` in a subprocess: the same recipe and scoring as `tasks.train`."""
    with tempfile.TemporaryDirectory(prefix=f"codelstm-task-{name}-") as tmp:
        out = Path(tmp) / "model"
        command = [sys.executable, "-m", "codelstm.cli", "explore", "train-task", name, "--out", str(out),
                   "--seed", str(seed), "--quiet"] + (["--steps", str(steps)] if steps is not None else [])
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=TRAIN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise TrainingFailed(f"training {name!r} took over {TRAIN_TIMEOUT_S} s") from None
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise TrainingFailed(f"training {name!r} failed: {last}")
        report = json.loads(done.stdout)
        model, config = load_checkpoint(out)
    metadata = config.get("training", {})
    return tasks.TrainedTask(name, model.eval(), report["steps"], report["train_seconds"],
                             report["exact_match"], metadata)
