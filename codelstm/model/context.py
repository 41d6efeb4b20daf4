"""Context models: next-byte predictions from text the user already has (the document so far, a workspace).

Code repeats itself: identifiers, call shapes and whole lines recur within a file and across a project,
and an LSTM state of a few hundred units forgets most of what the file said a few KB back. Each context
model here looks up the earlier occurrences of one context (the last n bytes, or the identifier typed so
far) in the history and predicts what followed them:

- **order-n models** (n in `ContextConfig.orders`): the bytes that followed the last `recent` occurrences
  of the last n bytes, most recent first (PPM-like counts, but with a recency window instead of tables);
- **the identifier model**: the same over the identifier typed so far, whatever its length, counting only
  earlier names that start the same way (`get_current_us` predicts how that name ended before, whether
  it followed a dot, a blank or a bracket);
- **the match model**: the longest context that occurred before, followed to the byte after its latest
  occurrence, with the verified length of the match (a long match is near certain).

Contexts are found by a 64-bit polynomial hash of their bytes, which depends on the content only, so a
document's contexts can be looked up in a workspace's index. Every model is a function of (history,
position): nothing is carried from byte to byte, so a beam forks by remembering its own bytes only.

`document_predictions` computes every position of a document at once (numpy, for evaluation and for
fitting the mixer); `ContextIndex` holds a read-only history (a workspace, or a document's prefix)
sorted by context key for lookups. A key is the context's hash tagged with its model (`context_keys`:
the model's number in the top bits), so one sorted array serves every model and a search step looks up
all its (beam, model) contexts in one search per index.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from codelstm.model.generate import IDENTIFIER_MASK

HASH_MULTIPLIER = 0x9E3779B97F4A7C15  # odd, so invertible modulo 2**64
_MOD = 1 << 64
_INVERSE = pow(HASH_MULTIPLIER, -1, _MOD)
MATCH_CAP = 64  # bytes: a match verified this long is treated as certain enough; longer adds nothing
_IDENT = IDENTIFIER_MASK.numpy()


@dataclass(frozen=True)
class ContextConfig:
    orders: tuple[int, ...] = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)  # context lengths of the order-n models
    recent: int = 32  # occurrences of a context counted, most recent first: code is local
    identifier_max: int = 32  # identifier prefixes longer than this (bytes) get no identifier prediction

    @property
    def model_names(self) -> list[str]:
        """Sources of a prediction, in mixer order: the LSTM, each order, the identifier and match models, and the
        names model (names.py: from a table counted over the training corpus, not from this history)."""
        return ["lstm", *(f"order{n}" for n in self.orders), "identifier", "match", "names"]

    def to_dict(self) -> dict:
        return {"orders": list(self.orders), "recent": self.recent, "identifier_max": self.identifier_max}

    @classmethod
    def from_dict(cls, data: dict) -> "ContextConfig":
        return cls(orders=tuple(data["orders"]), recent=int(data["recent"]),
                   identifier_max=int(data["identifier_max"]))


def _powers(base: int, count: int) -> np.ndarray:
    """base**0 .. base**(count-1) modulo 2**64 (numpy's unsigned products wrap, which is the modulus)."""
    out = np.empty(count, dtype=np.uint64)
    out[0] = 1
    if count > 1:
        out[1:] = np.cumprod(np.full(count - 1, base, dtype=np.uint64))
    return out


class TextHashes:
    """Prefix sums that give the hash of any slice data[a:i] in O(1), vectorised.

    hash(data[a:i]) = sum_j (data[j] + 1) * P**(i-1-j) mod 2**64, computed as (S[i] - S[a]) * P**(i-1)
    with S[i] = sum_{j<i} (data[j] + 1) * P**-j: the value depends on the bytes only, not on where they are.
    """

    def __init__(self, data: bytes) -> None:
        n = len(data)
        values = np.frombuffer(data, dtype=np.uint8).astype(np.uint64) + np.uint64(1)
        self.forward = _powers(HASH_MULTIPLIER, n + 1)
        self.sums = np.zeros(n + 1, dtype=np.uint64)
        if n:
            self.sums[1:] = np.cumsum(values * _powers(_INVERSE, n))

    def slices(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Hashes of data[starts[k]:ends[k]] (each end > start)."""
        return (self.sums[ends] - self.sums[starts]) * self.forward[ends - 1]


def key_layout(config: ContextConfig) -> tuple[int, int]:
    """(shift, mask) of a model-tagged key: model m's key of hash h is (m << shift) | (h & mask).

    The top bits say the model, so the same bytes as an order-n context and as an identifier get different
    keys and each model's entries are one block of the sorted keys; the rest is the hash modulo
    2**shift (60 bits for 11 models: a polynomial hash modulo a power of two, like the full one)."""
    shift = 64 - max(1, len(config.orders).bit_length())  # models: the orders and the identifier model
    return shift, (1 << shift) - 1


def context_keys(hashes: np.ndarray, model: int, config: ContextConfig) -> np.ndarray:
    """Model-tagged keys (`key_layout`) of an array of context hashes, written over it (an index build tags
    millions of fresh hashes: no copy)."""
    shift, mask = key_layout(config)
    hashes &= np.uint64(mask)
    hashes |= np.uint64(model << shift)
    return hashes


def hash_bytes(context: bytes) -> int:
    """The hash `TextHashes.slices` gives these bytes, one context at a time (for incremental lookups)."""
    h = 0
    for b in context:
        h = (h * HASH_MULTIPLIER + b + 1) % _MOD
    return h


def identifier_starts(data: bytes) -> np.ndarray:
    """For each position i: where the identifier run ending at data[i-1] starts (i if data[i-1] is not one)."""
    n = len(data)
    ident = _IDENT[np.frombuffer(data, dtype=np.uint8)] if n else np.zeros(0, dtype=bool)
    positions = np.arange(n + 1)
    # a run starts at j when data[j] is an identifier byte and data[j-1] is not
    starts_here = np.zeros(n + 1, dtype=bool)
    starts_here[:n] = ident & ~np.concatenate(([False], ident[:-1]))
    last_start = np.maximum.accumulate(np.where(starts_here, positions, 0))
    out = positions.copy()
    inside = np.concatenate(([False], ident))  # data[i-1] is an identifier byte
    # for i with data[i-1] in a run, the run's start is the latest start at or before i-1
    out[inside] = last_start[np.maximum(positions[inside] - 1, 0)]
    return out


def context_starts(data: bytes, config: ContextConfig) -> list[np.ndarray]:
    """Per model (orders, then identifier): the start of the context predicting each position 0..len(data)-1;
    -1 where the model has no context there (too near the start, or not inside an identifier)."""
    n = len(data)
    positions = np.arange(n)
    out = []
    for order in config.orders:
        out.append(np.where(positions >= order, positions - order, -1))
    run_start = identifier_starts(data)[:n]
    length = positions - run_start  # the identifier typed so far: its start is aligned with a name's start
    usable = (length >= 1) & (length <= config.identifier_max)
    out.append(np.where(usable, run_start, -1))
    return out


@dataclass
class ContextIndex:
    """A read-only history (a workspace's files, NUL-separated) sorted by context key, all models in one.

    `keys` (sorted model-tagged keys, `context_keys`, of the context before each indexed position, for each
    model) and `positions` (where the byte predicted by that context sits), positions ascending within equal
    keys, so the latest occurrences of a context are the last entries of its range.
    """

    data: bytes
    config: ContextConfig
    keys: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    positions: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))

    start: int = 0  # positions before this are not indexed (a document's recent part: `ContextView`)
    _identifiers: list[bytes] | None = field(default=None, init=False, repr=False, compare=False)

    def identifiers(self) -> list[bytes]:
        """The distinct identifiers of the text, sorted: which names a workspace writes, by bisection
        (`DocumentMixer.knows_name`). Built once, on first use (a workspace builds it with its index: 40 ms per MiB)."""
        if self._identifiers is None:
            self._identifiers = sorted(set(_IDENTIFIER_RUN.findall(self.data)))
        return self._identifiers

    @classmethod
    def build(cls, data: bytes, config: ContextConfig, start: int = 0) -> "ContextIndex":
        """Index the positions start..len(data)-1 of `data` (their contexts may begin before `start`): O(len - start)."""
        # a context is at most this long, and an identifier run that begins before `base` is longer than the
        # identifier model's limit at every indexed position, so the slice from `base` gives the same contexts
        base = max(0, start - max(max(config.orders), config.identifier_max) - 1)
        part = data[base:] if base else data
        hashes = TextHashes(part)
        contexts = context_starts(part, config)
        first = start - base  # the first indexed position of `part`
        indexed = [first + np.flatnonzero(starts[first:] >= 0) for starts in contexts]  # per model, ascending
        # 12 bytes per entry; the model's number in a key's top bits makes each model's sorted entries one
        # block of the whole, in model order: sorting per model and placing the blocks sorts everything
        keys = np.empty(sum(len(ends) for ends in indexed), dtype=np.uint64)
        positions = np.empty(len(keys), dtype=np.int32)
        at = 0
        for m, (starts, ends) in enumerate(zip(contexts, indexed)):
            model_keys = context_keys(hashes.slices(starts[ends], ends), m, config)
            order = np.argsort(model_keys, kind="stable")
            size = len(order)
            keys[at:at + size] = model_keys[order]
            positions[at:at + size] = ends[order] + base
            at += size
        return cls(data, config, keys, positions, start=start)

    @property
    def nbytes(self) -> int:
        """Memory held: its text (when it indexes all of it), 12 bytes per indexed (model, position), and its
        distinct identifiers once listed (about 0.5 bytes per byte of Python source)."""
        text = len(self.data) if self.start == 0 else 0  # a recent-part index shares its document's text
        names = sum(len(n) + 41 for n in self._identifiers) if self._identifiers is not None else 0  # object + pointer
        return text + self.keys.nbytes + self.positions.nbytes + names


EMPTY = -1  # no prediction in this slot
_IDENTIFIER_RUN = re.compile(rb"[A-Za-z0-9_\x80-\xff]+")  # the bytes `generate.is_identifier_byte` accepts


@dataclass
class Predictions:
    """Every context model's view of every position of one document (bulk form).

    `next_bytes[m]`: (N, recent) int16, the bytes that followed the most recent occurrences of model m's
    context, most recent first (document occurrences before workspace ones), EMPTY where there are fewer.
    `match_byte`, `match_length`: (N,) the match model's predicted byte (EMPTY: none) and verified length.
    """

    next_bytes: list[np.ndarray]
    match_byte: np.ndarray
    match_length: np.ndarray


def _match_lengths(a: bytes, a_end: np.ndarray, b: bytes, b_end: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """How far a[..a_end] and b[..b_end] agree backwards, counted from `floor` (known equal), capped."""
    a_arr = np.frombuffer(a, dtype=np.uint8)
    b_arr = np.frombuffer(b, dtype=np.uint8)
    length = floor.copy()
    alive = np.ones(len(length), dtype=bool)
    for k in range(int(floor.min(initial=MATCH_CAP)), MATCH_CAP):
        check = alive & (length == k)  # rows agreeing on exactly k bytes so far: compare the next one back
        ia, ib = a_end - 1 - k, b_end - 1 - k
        inside = check & (ia >= 0) & (ib >= 0)
        same = np.zeros(len(length), dtype=bool)
        same[inside] = a_arr[ia[inside]] == b_arr[ib[inside]]
        length[same] += 1
        alive &= ~(check & ~same)
        if not alive.any():
            break
    return np.minimum(length, MATCH_CAP)


def document_predictions(doc: bytes, config: ContextConfig, workspace: ContextIndex | None = None) -> Predictions:
    """Every model's occurrences for every position of `doc`, read from its start (bulk, vectorised).

    Position i is predicted from doc[:i] and the workspace; the occurrences of a context in the document
    come first (the file is the most local evidence), then the workspace's latest ones.
    """
    n = len(doc)
    recent = config.recent
    doc_arr = np.frombuffer(doc, dtype=np.uint8)
    ws_arr = np.frombuffer(workspace.data, dtype=np.uint8) if workspace is not None else None
    hashes = TextHashes(doc)
    ends = np.arange(n)
    next_bytes: list[np.ndarray] = []
    longest_hit = np.full(n, -1)  # the longest order whose context occurred before (for the match model)
    hit_position = np.full(n, -1)  # where that context's latest occurrence's next byte sits
    hit_in_doc = np.zeros(n, dtype=bool)
    for m, starts in enumerate(context_starts(doc, config)):
        table = np.full((n, recent), EMPTY, dtype=np.int16)
        valid = np.flatnonzero(starts >= 0)
        keys = context_keys(hashes.slices(starts[valid], ends[valid]), m, config)  # as an index would hold them
        order = np.argsort(keys, kind="stable")  # positions ascending within a key
        sorted_keys, sorted_pos = keys[order], valid[order]
        rank = np.empty(len(valid), dtype=np.int64)
        rank[order] = np.arange(len(valid))
        found = np.zeros(len(valid), dtype=np.int64)
        latest = np.full(len(valid), -1)
        for j in range(recent):
            prev = rank - 1 - j
            ok = prev >= 0
            ok[ok] = sorted_keys[prev[ok]] == keys[ok]
            if not ok.any():
                break
            pos = sorted_pos[prev[ok]]
            table[valid[ok], j] = doc_arr[pos]
            found[ok] += 1
            if j == 0:
                latest[ok] = pos
        if workspace is not None and len(workspace.keys):
            wk, wp = workspace.keys, workspace.positions
            hi = np.searchsorted(wk, keys, side="right")
            lo = np.searchsorted(wk, keys, side="left")
            for j in range(recent):
                ok = (hi - 1 - j >= lo) & (found < recent)
                if not ok.any():
                    break
                rows = np.flatnonzero(ok)
                table[valid[rows], found[rows]] = ws_arr[wp[hi[rows] - 1 - j]]
                found[rows] += 1
            ws_latest = np.where(hi > lo, wp[np.maximum(hi - 1, 0)], -1)
        else:
            ws_latest = np.full(len(valid), -1)
        next_bytes.append(table)
        if m < len(config.orders):  # orders ascend: a later hit is a longer context
            hit = valid[(latest >= 0) | (ws_latest >= 0)]
            in_doc = (latest >= 0)[(latest >= 0) | (ws_latest >= 0)]
            where = np.where(latest >= 0, latest, ws_latest)[(latest >= 0) | (ws_latest >= 0)]
            longest_hit[hit] = config.orders[m]
            hit_position[hit] = where
            hit_in_doc[hit] = in_doc
    match_byte = np.full(n, EMPTY, dtype=np.int16)
    match_length = np.zeros(n, dtype=np.int64)
    for in_doc, source, source_arr in ((True, doc, doc_arr), (False, workspace.data if workspace else b"", ws_arr)):
        rows = np.flatnonzero((longest_hit > 0) & (hit_in_doc == in_doc))
        if not len(rows):
            continue
        match_byte[rows] = source_arr[hit_position[rows]]
        match_length[rows] = _match_lengths(doc, rows, source, hit_position[rows], longest_hit[rows])
    return Predictions(next_bytes, match_byte, match_length)
