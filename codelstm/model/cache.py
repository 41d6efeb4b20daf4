"""Per-document state cache: an LSTM's state after a prefix summarises it, so keep it.

For each document id we keep the bytes seen and (state, next-byte logits) checkpoints every
`interval` bytes plus one at the end of the last request (the "tip"). A new request resumes from
the last checkpoint at or before the first byte that differs, so typing one more character costs
one step and an edit in the middle of a file resumes there, not from the top. Memory is bounded by
a byte budget with least-recently-used eviction.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import torch

from codelstm.model.network import State

Checkpoint = tuple[State, torch.Tensor]  # (state, logits for the next byte), batch size 1


def common_prefix_length(a: bytes, b: bytes) -> int:
    """Length of the longest common prefix, in bytes (binary search over slices: fast in C)."""
    if a is b or a == b:  # a long read storing its progress again: no slicing
        return len(a)
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


TENSOR_OVERHEAD = 512  # bytes a small CPU tensor costs beside its data (Python object, TensorImpl, storage)


def _nbytes(cp: Checkpoint) -> int:
    """What a checkpoint holds in memory: a bfloat16 one of the bundled model has 3.5 KB of data and
    takes 5.0 KB of resident memory (bench/native_memory.py), so the overhead is counted too."""
    state, logits = cp
    return sum(t.numel() * t.element_size() + TENSOR_OVERHEAD for t in (*state, logits))


@dataclass
class _Document:
    text: bytes = b""
    offsets: list[int] = field(default_factory=list)  # sorted checkpoint offsets
    checkpoints: dict[int, Checkpoint] = field(default_factory=dict)
    nbytes: int = 0  # all it holds: text, states and context
    context: Any = None  # the document's context index (model/context.py), beside its states
    context_nbytes: int = 0


@dataclass
class CacheStats:
    lookups: int = 0
    hits: int = 0  # lookups that resumed from a checkpoint past offset 0
    evictions: int = 0


class StateCache:
    def __init__(self, budget_bytes: int = 256 << 20, interval: int = 256) -> None:
        self.budget = budget_bytes
        self.interval = interval
        self.docs: OrderedDict[str, _Document] = OrderedDict()
        self.nbytes = 0
        self.stats = CacheStats()
        self._lock = threading.Lock()

    def lookup(self, doc_id: str, text: bytes) -> tuple[int, Checkpoint | None]:
        """(offset, checkpoint) to resume from: the latest checkpoint at or before the first differing byte."""
        with self._lock:
            self.stats.lookups += 1
            doc = self.docs.get(doc_id)
            if doc is None:
                return 0, None
            self.docs.move_to_end(doc_id)
            same = common_prefix_length(doc.text, text)
            i = bisect.bisect_right(doc.offsets, same) - 1
            if i < 0:
                return 0, None
            offset = doc.offsets[i]
            self.stats.hits += offset > 0
            return offset, doc.checkpoints[offset]

    def store(self, doc_id: str, text: bytes, checkpoints: dict[int, Checkpoint]) -> None:
        """Record the document's current text and new checkpoints (offsets into text); drop stale ones."""
        with self._lock:
            doc = self.docs.pop(doc_id, None) or _Document()
            same = common_prefix_length(doc.text, text)
            kept = {o: cp for o, cp in doc.checkpoints.items() if o <= same and (o % self.interval == 0)}
            kept.update(checkpoints)
            doc.text = text
            doc.checkpoints = kept
            doc.offsets = sorted(kept)
            self.nbytes -= doc.nbytes
            doc.nbytes = len(text) + sum(_nbytes(cp) for cp in kept.values()) + doc.context_nbytes
            self.nbytes += doc.nbytes
            self.docs[doc_id] = doc
            self._evict()

    def context(self, doc_id: str) -> Any:
        """The context index last stored for the document (it may cover an older text), or None."""
        with self._lock:
            doc = self.docs.get(doc_id)
            return doc.context if doc is not None else None

    def store_context(self, doc_id: str, context: Any, nbytes: int) -> None:
        """Keep the document's context index beside its states, counted in the same budget (the document
        is made if it has no states yet; its text then stays empty, so its states resume from the start)."""
        with self._lock:
            doc = self.docs.pop(doc_id, None) or _Document()
            self.nbytes -= doc.nbytes
            doc.nbytes += nbytes - doc.context_nbytes
            doc.context, doc.context_nbytes = context, nbytes
            self.nbytes += doc.nbytes
            self.docs[doc_id] = doc
            self._evict()

    def _evict(self) -> None:
        """Least recently used documents go until the total fits (never the last one)."""
        while self.nbytes > self.budget and len(self.docs) > 1:
            _, old = self.docs.popitem(last=False)
            self.nbytes -= old.nbytes
            self.stats.evictions += 1

    def clear(self) -> None:
        with self._lock:
            self.docs.clear()
            self.nbytes = 0

    def __len__(self) -> int:
        return len(self.docs)
