"""The context models one position at a time: what a completion search asks at each step of each beam.

`document_predictions` (context.py) reads a whole document at once; a search instead asks about a text
that grows a byte per step and forks per beam. A `ContextView` answers for "the document so far, then
these bytes" from three places, latest occurrences first:

- the beam's own bytes (and the context reaching back into the document): scanned directly;
- the document: a `ContextIndex` (sorted hashes, built in bulk) over its start, which may be older than the
  document (a server keeps it per document across keystrokes: only the part still equal to the document's
  start is used), and a small index over the rest (the recent bytes), built with the view;
- the workspace's own index.

The answer is the same as the bulk one at that position (a test checks it byte for byte), so evaluation,
search and serving share one definition. `predict` is called once per beam per search step, so it is
written for speed: one hash pass for every context length, and longer orders are skipped once a shorter
one has no occurrence (a longer context cannot occur where its own suffix does not).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codelstm.model.cache import common_prefix_length
from codelstm.model.context import EMPTY, HASH_MULTIPLIER, MATCH_CAP, ContextConfig, ContextIndex, _IDENT

_MASK = (1 << 64) - 1
_IDENT_LIST = _IDENT.tolist()


@dataclass
class PositionPrediction:
    """Every context model's view of one position: per model the followers, most recent first."""

    followers: list[list[int]]  # per order-n model then the identifier model: at most `recent` bytes
    match_byte: int  # EMPTY: no match
    match_length: int
    recent: int  # the most followers a model lists

    @property
    def tables(self) -> list[np.ndarray]:
        """The followers as the bulk form's rows: (recent,) int16 each, EMPTY-padded."""
        out = []
        for f in self.followers:
            row = np.full(self.recent, EMPTY, dtype=np.int16)
            row[:len(f)] = f
            out.append(row)
        return out


class _Source:
    """One index's arrays, ready for scalar lookups."""

    def __init__(self, index: ContextIndex, limit: int | None = None) -> None:
        self.keys = index.keys
        self.positions = index.positions
        self.data = np.frombuffer(index.data, dtype=np.uint8)
        self.limit = limit  # only positions below this count (None: all)

    def lookup(self, model: int, h: np.uint64, wanted: int) -> tuple[list[int], int]:
        """Followers of the context with hash `h` (latest first, at most `wanted`), and the latest one's
        position (-1: no occurrence at all, however many were wanted)."""
        keys = self.keys[model]
        lo = int(keys.searchsorted(h, "left"))
        hi = int(keys.searchsorted(h, "right"))
        if hi > lo and self.limit is not None:
            positions = self.positions[model]
            hi = lo + int(positions[lo:hi].searchsorted(self.limit, "left"))  # ascending within a key
        if hi <= lo:
            return [], -1
        positions = self.positions[model]
        latest = int(positions[hi - 1])
        if wanted <= 0:
            return [], latest
        take = positions[max(lo, hi - wanted):hi]
        return self.data[take[::-1]].tolist(), latest


class ContextView:
    """Context predictions for `document` (whose start `index` may cover) plus a workspace."""

    def __init__(self, config: ContextConfig, document: bytes, index: ContextIndex | None = None,
                 workspace: ContextIndex | None = None) -> None:
        self.config = config
        self.document = document
        self.index = index
        # the part of the index that still holds: the document's start as far as the index's text agrees
        self.indexed = min(common_prefix_length(index.data, document), len(index.data)) if index is not None else 0
        self.workspace = workspace
        self._sources: list[_Source] = []  # the document's indexes, latest text first
        if len(document) > self.indexed:
            self.recent = ContextIndex.build(document, config, start=self.indexed)
            self._sources.append(_Source(self.recent))
        else:
            self.recent = None
        if index is not None and self.indexed:
            limit = self.indexed if self.indexed < len(index.data) else None
            self._sources.append(_Source(index, limit))
        self._workspace = _Source(workspace) if workspace is not None else None
        self._span = max(max(config.orders), config.identifier_max) + 1
        self._lengths = list(config.orders)

    @property
    def nbytes(self) -> int:
        """Memory of the per-view part (the recent bytes' index); the document's index is held elsewhere."""
        return self.recent.nbytes if self.recent is not None else 0

    def predict(self, generated: bytes = b"") -> PositionPrediction:
        """The models' view of the position after document + generated."""
        cfg = self.config
        doc = self.document
        i = len(doc) + len(generated)
        # the last bytes of the text, enough for every context: hashes of each suffix length in one pass
        last = (doc[-self._span:] + generated)[-self._span:]
        hashes = [0] * (len(last) + 1)
        h, power = 0, 1
        for k in range(1, len(last) + 1):
            h = (h + (last[-k] + 1) * power) & _MASK
            power = (power * HASH_MULTIPLIER) & _MASK
            hashes[k] = h
        ident = 0
        while ident < len(last) and _IDENT_LIST[last[-1 - ident]]:
            ident += 1
        if ident > cfg.identifier_max:
            ident = 0
        followers: list[list[int]] = []
        latest_hit: tuple[int, bool, int] | None = None  # (order, in the text, position of the follower)
        dead = False  # a shorter order had no occurrence: no longer one can have any
        for m, n in enumerate(self._lengths):
            if dead or n > i:
                followers.append([])
                continue
            row, where, in_text = self._followers(m, n, hashes[n], generated, aligned=False)
            followers.append(row)
            if where < 0:
                dead = True
            else:
                latest_hit = (n, in_text, where)
        if ident:
            row, _, _ = self._followers(len(self._lengths), ident, hashes[ident], generated, aligned=True)
            followers.append(row)
        else:
            followers.append([])
        match_byte, match_length = EMPTY, 0
        if latest_hit is not None:
            order, in_text, pos = latest_hit
            match_byte, match_length = self._match(order, in_text, pos, generated)
        return PositionPrediction(followers, match_byte, match_length, cfg.recent)

    def _followers(self, model: int, n: int, h: int, generated: bytes, aligned: bool) -> tuple[list[int], int, bool]:
        """Followers of the last `n` bytes (latest first, at most `recent`), where the latest sits (-1: none)
        and whether it is in the text (document + generated) rather than the workspace. `aligned`: count only
        occurrences that start a name (the identifier model)."""
        recent = self.config.recent
        doc = self.document
        out: list[int] = []
        latest, in_text = -1, True
        if generated:  # occurrences whose follower is one of the beam's bytes: in doc[-n-1:] + generated
            local_doc = doc[-(n + 1):]
            local = local_doc + generated
            offset = len(doc) - len(local_doc)  # text position of local[0]
            context = local[-n:]
            end = len(local) - 1  # a follower must come before the position predicted
            floor = max(len(local_doc) - n, 0)  # followers from len(doc) on
            while len(out) < recent:
                at = local.rfind(context, floor, end)
                if at < 0:
                    break
                end = at + n - 1
                if aligned and (at > 0 and _IDENT_LIST[local[at - 1]] or at == 0 and offset > 0
                                and _IDENT_LIST[doc[offset - 1]]):
                    continue
                out.append(local[at + n])
                if latest < 0:
                    latest = offset + at + n
        key = np.uint64(h)
        for source in self._sources:
            if len(out) >= recent and latest >= 0:
                return out, latest, in_text
            row, where = source.lookup(model, key, recent - len(out))
            if where >= 0 and latest < 0:
                latest = where
            out += row
        if self._workspace is not None and (len(out) < recent or latest < 0):
            row, where = self._workspace.lookup(model, key, recent - len(out))
            if where >= 0 and latest < 0:
                latest, in_text = where, False
            out += row
        return out, latest, in_text

    def _match(self, order: int, in_text: bool, pos: int, generated: bytes) -> tuple[int, int]:
        """The byte after the latest occurrence of the longest context, and how far back the match holds."""
        doc = self.document
        n_doc = len(doc)
        cap = MATCH_CAP
        mine = (doc[-(cap + 1):] + generated)[-(cap + 1):]  # the text's last bytes, enough to verify
        if in_text:
            if pos >= n_doc:
                source_byte = generated[pos - n_doc]
            else:
                source_byte = doc[pos]
            lo = max(pos - cap - 1, 0)
            theirs = doc[lo:pos] if pos <= n_doc else (doc[lo:] + generated[:pos - n_doc])[-(pos - lo):]
        else:
            data = self.workspace.data
            source_byte = data[pos]
            theirs = data[max(pos - cap - 1, 0):pos]
        length = order
        while length < cap and length < len(mine) and length < len(theirs) and mine[-1 - length] == theirs[-1 - length]:
            length += 1
        return source_byte, length
