"""Byte streams for training: memory-mapped .bin files read as contiguous, stateful lanes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from codelstm.model.config import DOC_SEPARATOR


def open_stream(path: str | Path) -> np.memmap:
    """The whole split as a uint8 array that never loads into RAM at once."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"corpus file not found: {path}")
    if path.stat().st_size == 0:
        return np.zeros(0, dtype=np.uint8)
    return np.memmap(path, dtype=np.uint8, mode="r")


class LaneBatcher:
    """Cuts a stream into `lanes` contiguous regions and walks them in step, `seq_len` bytes at a time.

    Because each lane continues exactly where its previous chunk ended, the hidden state carried across
    chunks (truncated BPTT) is the state of the true preceding text. `rank`/`world` shard the lanes so
    that distributed workers see disjoint parts of one global batch.
    """

    def __init__(self, data: np.ndarray, lanes: int, seq_len: int, rank: int = 0, world: int = 1) -> None:
        if len(data) < lanes * world * (seq_len + 1):
            raise ValueError(
                f"corpus too small: {len(data)} bytes for {lanes * world} lanes of {seq_len + 1} bytes; "
                "use a larger corpus or fewer lanes / a shorter sequence"
            )
        self.data, self.lanes, self.seq_len = data, lanes, seq_len
        global_lanes = lanes * world
        self.lane_len = len(data) // global_lanes
        self.starts = np.arange(rank * lanes, (rank + 1) * lanes) * self.lane_len
        self.offset = 0  # position inside every lane; the whole iterator state
        self.epoch = 0

    @property
    def steps_per_epoch(self) -> int:
        return (self.lane_len - 1) // self.seq_len

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """(x, y, reset): y is x shifted by one byte; reset is True when lanes wrapped and state must be zeroed."""
        reset = False
        if self.offset + self.seq_len + 1 > self.lane_len:
            self.offset, self.epoch, reset = 0, self.epoch + 1, True
        idx = self.starts[:, None] + self.offset + np.arange(self.seq_len + 1)[None, :]
        chunk = torch.from_numpy(np.asarray(self.data[idx], dtype=np.int64))  # (lanes, T+1)
        self.offset += self.seq_len
        return chunk[:, :-1], chunk[:, 1:], reset

    def state_dict(self) -> dict:
        return {"offset": int(self.offset), "epoch": int(self.epoch)}

    def load_state_dict(self, state: dict) -> None:
        self.offset, self.epoch = int(state["offset"]), int(state["epoch"])


def split_documents(data: np.ndarray, max_docs: int | None = None, max_bytes: int | None = None) -> list[bytes]:
    """The NUL-separated documents of a split, in order, optionally capped (for quick periodic validation)."""
    docs: list[bytes] = []
    total = 0
    seps = np.flatnonzero(np.asarray(data) == DOC_SEPARATOR)
    start = 0
    for end in list(seps) + ([len(data)] if len(data) and (not len(seps) or seps[-1] != len(data) - 1) else []):
        doc = bytes(data[start:end])
        start = int(end) + 1
        if not doc:
            continue
        if max_bytes is not None and total + len(doc) > max_bytes:
            doc = doc[: max_bytes - total]
        docs.append(doc)
        total += len(doc)
        if (max_docs is not None and len(docs) >= max_docs) or (max_bytes is not None and total >= max_bytes):
            break
    return docs


def spread_sample(docs: list[bytes], max_bytes: int, seed: int = 0) -> list[bytes]:
    """Whole documents drawn in a fixed shuffled order up to max_bytes, so a quick validation set
    represents the whole split rather than its first files (which share one source)."""
    import random

    order = list(range(len(docs)))
    random.Random(seed).shuffle(order)
    picked, total = [], 0
    for i in order:
        if total >= max_bytes:
            break
        doc = docs[i][: max_bytes - total] if total + len(docs[i]) > max_bytes and picked else docs[i]
        picked.append(doc)
        total += len(doc)
    return picked
