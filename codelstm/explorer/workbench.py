"""What the explorer keeps between requests: trained task models, float copies and the last few traces.

The page asks for one neuron, then another, then the overview grid, all on the same text: tracing once
and slicing the cached trace makes each click cheap. Blocking methods are meant to run off the event loop.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from pathlib import Path

from codelstm.explorer import tasks
from codelstm.model import ByteLM, load_checkpoint
from codelstm.model.activations import Trace, trace


class TrainingBusy(RuntimeError):
    """Another task model is being trained; training is one at a time (it pins torch's thread count)."""


class Workbench:
    def __init__(self, cache_size: int = 2) -> None:
        self.trained: dict[str, tasks.TrainedTask] = {}
        self.cache_size = cache_size
        self._traces: OrderedDict[tuple[int, bytes], tuple[ByteLM, Trace]] = OrderedDict()
        self._float: tuple[object, ByteLM] | None = None  # (owner, float32 model) for an int8/bfloat16 served one
        self._lock = threading.Lock()
        self._training = threading.Lock()

    def trace(self, model: ByteLM, data: bytes) -> Trace:
        """The trace of `data` by `model`, from the cache when the same model read the same text recently."""
        key = (id(model), hashlib.sha256(data).digest())
        with self._lock:
            hit = self._traces.get(key)
            if hit is not None and hit[0] is model:
                self._traces.move_to_end(key)
                return hit[1]
        result = trace(model, data)
        with self._lock:
            self._traces[key] = (model, result)
            while len(self._traces) > self.cache_size:
                self._traces.popitem(last=False)
        return result

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
        """Train a task model and keep it under its name; raises TrainingBusy while another one trains."""
        if not self._training.acquire(blocking=False):
            raise TrainingBusy("a task model is being trained; try again when it is done")
        try:
            result = tasks.train(name, steps=steps, seed=seed)
        finally:
            self._training.release()
        self.trained[name] = result
        return result
