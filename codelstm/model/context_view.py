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
search and serving share one definition. `predict_many` is called once per search step for all beams, so
it is written for speed: one hash pass for every context length, every (beam, model) context looked up in
each index with one search (an index holds all models' keys in one sorted array), and the beam's own bytes
scanned for longer orders only while a shorter one occurred there (a longer context cannot occur where its
own suffix does not).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codelstm.model.cache import common_prefix_length
from codelstm.model.context import EMPTY, HASH_MULTIPLIER, MATCH_CAP, ContextConfig, ContextIndex, _IDENT, key_layout

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
    """One index's arrays, ready for a step's lookups."""

    def __init__(self, index: ContextIndex, limit: int | None = None) -> None:
        self.keys = index.keys
        self.positions = index.positions
        self.data = np.frombuffer(index.data, dtype=np.uint8)
        self.limit = limit  # only positions below this count (None: all)

    def lookup(self, keys: list[int], wanted: list[int]) -> list[tuple[list[int], int] | None]:
        """Per model-tagged context key: its followers (latest first, at most that query's `wanted`) and the
        latest one's position, or None for no occurrence at all. One search for all queries of all models."""
        index_keys = self.keys
        out: list[tuple[list[int], int] | None] = [None] * len(keys)
        if not len(index_keys):
            return out
        needles = np.array(keys, dtype=np.uint64)
        lo = index_keys.searchsorted(needles, "left")
        found = index_keys[np.minimum(lo, len(index_keys) - 1)] == needles  # most lookups miss: those search once
        if not found.any():
            return out
        rows = np.flatnonzero(found)
        lo = lo[rows]
        hi = index_keys.searchsorted(needles[rows], "right")
        positions = self.positions
        if self.limit is not None:  # ascending within a key: drop those at or past the limit
            for r, (start, end) in enumerate(zip(lo.tolist(), hi.tolist())):
                hi[r] = start + int(positions[start:end].searchsorted(self.limit, "left"))
        take = np.minimum(np.array(wanted)[rows], hi - lo)  # followers listed per query
        back = np.arange(max(int(take.max()), 1))
        at = hi[:, None] - 1 - back  # the latest entries of each range, latest first
        listed = (self.data[positions[np.where(back < take[:, None], at, 0)]]).tolist()
        latest = positions[np.maximum(hi - 1, 0)].tolist()
        for q, row, count, where, there in zip(rows.tolist(), listed, take.tolist(), latest, (hi > lo).tolist()):
            if there:
                out[q] = (row[:count], where)
        return out


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
        self.workspace_bytes = len(workspace.data) if workspace is not None else 0  # the mixer's history term
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
        # (index, whether it holds the text rather than the workspace), in the order followers are listed
        self._searched = [(source, True) for source in self._sources] + \
            ([(self._workspace, False)] if self._workspace is not None else [])
        self._span = max(max(config.orders), config.identifier_max) + 1
        self._previous: dict[bytes, tuple] = {}  # the last predict_many's contexts, by beam bytes
        self._lengths = list(config.orders)
        shift, self._mask = key_layout(config)
        self._tags = [m << shift for m in range(len(self._lengths) + 1)]  # context_keys, one hash at a time

    @property
    def nbytes(self) -> int:
        """Memory of the per-view part (the recent bytes' index); the document's index is held elsewhere."""
        return self.recent.nbytes if self.recent is not None else 0

    def predict(self, generated: bytes = b"") -> PositionPrediction:
        """The models' view of the position after document + generated."""
        return self.predict_many([generated])[0]

    def predict_many(self, generated: list[bytes]) -> list[PositionPrediction]:
        """`predict` for several beams: each index is searched once for all their (beam, model) contexts."""
        cfg = self.config
        recent = cfg.recent
        prepared = [self._contexts(g) for g in generated]  # (position, hash per context length, identifier length)
        self._previous = {g: p for g, p in zip(generated, prepared)}  # the next step's beams extend these
        k = len(generated)
        models = len(self._lengths) + 1
        tags, mask = self._tags, self._mask
        # one query per (beam, model with a context there): (beam, model, key), its followers so far and where
        # the latest sits (-1: none yet), found in the beam's bytes first, then in each index in turn
        queries: list[tuple[int, int, int]] = []
        rows: list[list[int]] = []
        latest: list[int] = []
        for b, (i, hashes, ident, _) in enumerate(prepared):
            g = generated[b]
            scan = bool(g)  # the beam's own bytes; a longer context cannot occur there where its suffix does not
            for m, n in enumerate(self._lengths):
                if n > i:
                    break
                row, where = self._scan(n, g, False) if scan else ([], -1)
                scan = scan and where >= 0
                queries.append((b, m, tags[m] | (hashes[n] & mask)))
                rows.append(row)
                latest.append(where)
            if ident:
                row, where = self._scan(ident, g, True) if g else ([], -1)
                queries.append((b, models - 1, tags[-1] | (hashes[ident] & mask)))
                rows.append(row)
                latest.append(where)
        in_text = [True] * len(queries)  # whether the latest is in the text (document + beam), not the workspace
        for source, text in self._searched:
            need = [q for q in range(len(queries)) if len(rows[q]) < recent or latest[q] < 0]
            if not need:
                break
            got = source.lookup([queries[q][2] for q in need], [recent - len(rows[q]) for q in need])
            for q, hit in zip(need, got):
                if hit is not None:
                    row, where = hit
                    if latest[q] < 0:
                        latest[q], in_text[q] = where, text
                    rows[q] += row
        followers = [[[] for _ in range(models)] for _ in range(k)]
        hits: list[tuple[int, bool, int] | None] = [None] * k  # (order, in the text, follower position)
        for (b, m, _), row, where, here in zip(queries, rows, latest, in_text):
            followers[b][m] = row
            if where >= 0 and m < models - 1:  # orders ascend: the last hit is the longest context
                hits[b] = (self._lengths[m], here, where)
        out = []
        for b in range(k):
            match_byte, match_length = self._match(*hits[b], generated[b]) if hits[b] else (EMPTY, 0)
            out.append(PositionPrediction(followers[b], match_byte, match_length, recent))
        return out

    def _contexts(self, generated: bytes) -> tuple[int, list[int], int, int]:
        """(position predicted, hash of the last L bytes for each L, length of the identifier typed so far or 0,
        that length uncapped). From the previous step's parent beam when there is one: appending byte b makes
        hash(last L bytes) = hash(parent's last L - 1) * P + b + 1."""
        i = len(self.document) + len(generated)
        parent = self._previous.get(generated[:-1]) if generated else None
        if parent is not None:
            b = generated[-1]
            hashes = [0] + [(h * HASH_MULTIPLIER + b + 1) & _MASK for h in parent[1][:self._span]]
            raw = min(parent[3] + 1, self._span, i) if _IDENT_LIST[b] else 0
        else:
            last = (self.document[-self._span:] + generated)[-self._span:]
            hashes = [0] * (len(last) + 1)
            h, power = 0, 1
            for k in range(1, len(last) + 1):  # hash(last L + 1 bytes) = hash(last L) + (byte + 1) * P**L
                h = (h + (last[-k] + 1) * power) & _MASK
                power = (power * HASH_MULTIPLIER) & _MASK
                hashes[k] = h
            raw = 0
            while raw < len(last) and _IDENT_LIST[last[-1 - raw]]:
                raw += 1
        return i, hashes, raw if raw <= self.config.identifier_max else 0, raw

    def _scan(self, n: int, generated: bytes, aligned: bool) -> tuple[list[int], int]:
        """Occurrences of the last `n` bytes whose follower is one of the beam's bytes (in doc[-n-1:] +
        generated): their followers, latest first, and where the latest sits (-1: none)."""
        recent = self.config.recent
        doc = self.document
        local_doc = doc[-(n + 1):]
        local = local_doc + generated
        offset = len(doc) - len(local_doc)  # text position of local[0]
        context = local[-n:]
        end = len(local) - 1  # a follower must come before the position predicted
        floor = max(len(local_doc) - n, 0)  # followers from len(doc) on
        out: list[int] = []
        latest = -1
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
        return out, latest

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
