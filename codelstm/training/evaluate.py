"""Bits per byte on held-out documents, each read from its start with a fresh state (SPEC section 7).

The documents are packed back to back into a few lanes, each after its NUL start marker, and the
lanes are read side by side as one batched sequence on oneDNN's LSTM kernel. The network zeroes a
lane's state right before every NUL (`ByteLM._rnn_resetting`, as in training streams), so each
document is read from exactly the fresh state it would get alone: the per-document definition, at
the speed of a long batched sequence instead of a byte-at-a-time walk over padded rows.
"""

from __future__ import annotations

import heapq
import math
from typing import Callable, Iterator

import torch
import torch.nn.functional as F

from codelstm.model.config import DOC_SEPARATOR
from codelstm.model.network import ByteLM, State, native_bfloat16, use_onednn

LOG2E = 1.0 / math.log(2.0)
PAD = 0x20  # fills a lane after its last document; never a NUL, which would split every column after it


def resolve_precision(choice: str, device: torch.device) -> str:
    """`auto` is bfloat16 autocast where it is native and fast (CUDA, AVX-512 BF16 / AMX CPUs), else float32;
    the same rule as training, so validation runs on the kernels the trainer uses."""
    if choice != "auto":
        return choice
    return "bfloat16" if device.type == "cuda" or native_bfloat16() else "float32"


def pack_lanes(lengths: list[int], lanes: int) -> list[list[int]]:
    """Document indices per lane: longest first onto the shortest lane, so the lanes end close together.

    No more lanes than it takes to hold everything within the longest document's length: the read takes
    as many columns as the fullest lane, and a column costs more the more lanes it has, so extra lanes
    would only add half-empty rows (up to `lanes`, the batch a column runs best at).
    """
    if not lengths:
        return []
    longest, total = max(lengths) + 1, sum(lengths) + len(lengths)
    lanes = max(1, min(lanes, len(lengths), -(-total // longest)))
    heap = [(0, lane) for lane in range(lanes)]
    packed: list[list[int]] = [[] for _ in range(lanes)]
    for i in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        filled, lane = heapq.heappop(heap)
        packed[lane].append(i)
        heapq.heappush(heap, (filled + lengths[i] + 1, lane))
    return packed


def _lane_streams(docs: list[bytes], packed: list[list[int]]) -> torch.Tensor:
    """(lanes, T + 1) bytes (uint8: a byte of memory per byte read; `_segments` widens each chunk to the
    embedding's ids): every lane's documents, each after a NUL, padded at the end."""
    streams = [b"".join(bytes([DOC_SEPARATOR]) + docs[i] for i in lane) for lane in packed]
    width = max(len(s) for s in streams) + 1  # one more column: the last byte of the longest lane is a target
    rows = [s + bytes([PAD]) * (width - len(s)) for s in streams]
    return torch.frombuffer(bytearray(b"".join(rows)), dtype=torch.uint8).view(len(rows), width)


def _segments(model: ByteLM, seq: torch.Tensor, cuts: list[int], chunk: int, bfloat16: bool
              ) -> Iterator[tuple[int, torch.Tensor, State]]:
    """Read lanes `seq` (L, T) from zero states: (first column, logits (L, n, 256), state after it) per range
    of at most `chunk` columns; a range also ends right before every column in `cuts`."""
    device = seq.device
    state = model.initial_state(seq.size(0), device)  # a state (not None) makes the forward reset at NULs
    bounds = sorted({0, seq.size(1), *range(0, seq.size(1), chunk), *(c for c in cuts if 0 < c < seq.size(1))})
    for start, end in zip(bounds[:-1], bounds[1:]):
        with use_onednn(True), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bfloat16):
            logits, _, state = model(seq[:, start:end].long(), state)
        yield start, logits, state


def _prepare(model: ByteLM, docs: list[bytes], lanes: int) -> tuple[torch.Tensor, list[list[int]], list[list[int]]]:
    """(lane streams on the model's device, document indices per lane, each document's NUL column)."""
    assert all(DOC_SEPARATOR not in d for d in docs), "a document may not contain the NUL start marker"
    packed = pack_lanes([len(d) for d in docs], lanes)
    starts: list[list[int]] = [[] for _ in docs]
    for lane, members in enumerate(packed):
        column = 0
        for i in members:
            starts[i] = [lane, column]
            column += len(docs[i]) + 1
    return _lane_streams(docs, packed).to(model.device), packed, starts


@torch.no_grad()
def bits_by_document(model: ByteLM, docs: list[bytes], lanes: int = 32, chunk: int = 512, precision: str = "float32",
                     on_bytes: Callable[[int], None] | None = None) -> list[float]:
    """-log2 p over every byte of each doc (0.0 for an empty one), each read after a NUL from a zero state.

    The docs are packed into `lanes` streams and read together; every target byte's cost is credited to
    the document it belongs to, so a breakdown (per file, per package) costs no second read.
    `precision`: "float32" (exact, the default), "bfloat16" (autocast, about twice as fast where native) or
    "auto" (`resolve_precision`). `on_bytes(n)` is told how many document bytes each range scored (progress bars).
    """
    kept = [i for i, d in enumerate(docs) if d]
    bits = [0.0] * len(docs)
    if not kept:
        return bits
    was_training = model.training
    model.eval()
    seq, _, starts = _prepare(model, [docs[i] for i in kept], lanes)  # (L, T + 1)
    # the document each target column scores (-1: a start marker or padding); document j's NUL is at its
    # start column, so targets start .. start + len - 1 are its bytes
    owner = torch.full((seq.size(0), seq.size(1) - 1), -1, dtype=torch.int32)
    for j, (lane, column) in enumerate(starts):
        owner[lane, column:column + len(docs[kept[j]])] = j
    owner = owner.to(seq.device)
    totals = torch.zeros(len(kept), dtype=torch.float64, device=seq.device)
    bfloat16 = resolve_precision(precision, seq.device) == "bfloat16"
    for start, logits, _ in _segments(model, seq[:, :-1], [], chunk, bfloat16):
        end = start + logits.size(1)
        targets = seq[:, start + 1:end + 1].reshape(-1).long()
        nll = F.cross_entropy(logits.float().reshape(-1, 256), targets, reduction="none")
        who = owner[:, start:end].reshape(-1)
        scored = who >= 0
        totals.index_add_(0, who[scored], nll[scored].double())
        if on_bytes is not None:
            on_bytes(int(scored.sum()))
    model.train(was_training)
    for j, total in zip(kept, (totals * LOG2E).tolist()):
        bits[j] = total
    return bits


def document_nll_bits(model: ByteLM, docs: list[bytes], lanes: int = 32, chunk: int = 512,
                      precision: str = "float32", on_bytes: Callable[[int], None] | None = None) -> tuple[float, int]:
    """(total -log2 p over every byte of every doc, byte count): `bits_by_document`, summed."""
    bits = bits_by_document(model, docs, lanes, chunk, precision, on_bytes)
    return math.fsum(bits), sum(len(d) for d in docs)


@torch.no_grad()
def states_at(model: ByteLM, docs: list[bytes], positions: list[list[int]], lanes: int = 32, chunk: int = 512,
              precision: str = "float32") -> list[list[tuple[State, torch.Tensor]]]:
    """For each doc, (state, next-byte logits (1, 256)) after reading doc[:p] fresh, for each p in its positions.

    What `prefill(model, doc[:p])` gives, for many positions of many documents in one packed read; the
    states come back in the model's dtype, ready for a search.
    """
    if not docs:
        return []
    was_training = model.training
    model.eval()
    seq, _, starts = _prepare(model, docs, lanes)
    wanted: dict[int, list[tuple[int, int, int]]] = {}  # column after which to snapshot -> (lane, doc, slot)
    for i, ps in enumerate(positions):
        lane, column = starts[i]
        for slot, p in enumerate(ps):
            assert 0 <= p <= len(docs[i]), f"position {p} is outside document {i} ({len(docs[i])} bytes)"
            wanted.setdefault(column + p, []).append((lane, i, slot))
    out: list[list[tuple[State, torch.Tensor] | None]] = [[None] * len(ps) for ps in positions]
    bfloat16 = resolve_precision(precision, seq.device) == "bfloat16"
    last = max(wanted, default=-1)
    for start, logits, state in _segments(model, seq[:, :last + 1], [c + 1 for c in wanted], chunk, bfloat16):
        for lane, i, slot in wanted.get(start + logits.size(1) - 1, ()):
            out[i][slot] = (tuple(s[:, lane:lane + 1].to(model.dtype).clone() for s in state),
                            logits[lane:lane + 1, -1].to(model.dtype).clone())
    model.train(was_training)
    return out  # type: ignore[return-value]


def bits_per_byte(model: ByteLM, docs: list[bytes], **kw) -> float:
    bits, n = document_nll_bits(model, docs, **kw)
    return bits / max(n, 1)
