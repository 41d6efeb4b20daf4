"""The context models one position at a time: what a completion search asks at each step of each beam.

`document_predictions` (context.py) reads a whole document at once; a search instead asks about a text
that grows a byte per step and forks per beam. A `ContextView` answers for "the document so far, then
these bytes": the document's prefix up to `indexed` is looked up in its `ContextIndex` (sorted hashes,
built in bulk), everything after it (the recent bytes and the beam's own) is scanned directly, and the
workspace has its own index. The answer is the same as the bulk one at that position (a test checks it
byte for byte), so evaluation, search and serving share one definition.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codelstm.model.context import EMPTY, MATCH_CAP, ContextConfig, ContextIndex, _IDENT, hash_bytes



@dataclass
class PositionPrediction:
    """Every context model's view of one position: per model the followers, most recent first."""

    tables: list[np.ndarray]  # per order-n model then the identifier model: (recent,) int16, EMPTY-padded
    match_byte: int  # EMPTY: no match
    match_length: int


def _identifier_context(text: bytes, limit: int) -> int:
    """Length of the identifier model's context at the end of `text` (0: none): the identifier typed so far."""
    k = 0
    while k < len(text) and _IDENT[text[-1 - k]]:
        k += 1
        if k > limit:
            return 0
    return k


class ContextView:
    """Context predictions for `document` (whose first `index` covers `indexed` bytes) plus a workspace."""

    def __init__(self, config: ContextConfig, document: bytes, index: ContextIndex | None = None,
                 workspace: ContextIndex | None = None) -> None:
        self.config = config
        self.document = document
        self.index = index
        self.indexed = len(index.data) if index is not None else 0
        if index is not None and document[:self.indexed] != index.data:
            raise ValueError("the document index covers other text than the document's start")
        self.workspace = workspace

    def predict(self, generated: bytes = b"") -> PositionPrediction:
        """The models' view of the position after document + generated."""
        cfg = self.config
        text = self.document + generated
        i = len(text)
        lengths = list(cfg.orders)
        ident = _identifier_context(text, cfg.identifier_max)
        tables: list[np.ndarray] = []
        latest_hit: tuple[int, bool, int] | None = None  # (order, in document, position of the follower)
        contexts = [(n, n if n <= i else 0) for n in lengths] + [(None, ident)]
        for m, (order, length) in enumerate(contexts):
            row = np.full(cfg.recent, EMPTY, dtype=np.int16)
            if length == 0 or length > i:
                tables.append(row)
                continue
            context = text[i - length:]
            followers, doc_latest = self._document_followers(text, context, m, aligned=order is None)
            ws_latest = -1
            if len(followers) < cfg.recent:
                ws_followers, ws_latest = self._workspace_followers(m, context, cfg.recent - len(followers))
                followers += ws_followers
            row[:len(followers)] = followers
            tables.append(row)
            if order is not None and (doc_latest >= 0 or ws_latest >= 0):
                latest_hit = (order, doc_latest >= 0, doc_latest if doc_latest >= 0 else ws_latest)
        match_byte, match_length = EMPTY, 0
        if latest_hit is not None:
            order, in_doc, pos = latest_hit
            source = text if in_doc else self.workspace.data
            match_byte = source[pos]
            match_length = order
            while (match_length < MATCH_CAP and i - 1 - match_length >= 0 and pos - 1 - match_length >= 0
                   and text[i - 1 - match_length] == source[pos - 1 - match_length]):
                match_length += 1
        return PositionPrediction(tables, match_byte, match_length)

    def _document_followers(self, text: bytes, context: bytes, model: int, aligned: bool) -> tuple[list[int], int]:
        """Followers of `context` before the end of `text`, latest first, and where the latest sits (-1: none).
        `aligned`: count only occurrences that start a name (the identifier model)."""
        cfg = self.config
        i, n = len(text), len(context)
        out: list[int] = []
        latest = -1
        # the unindexed part: occurrences whose follower sits at or after `indexed`, scanned from the end
        end = i - 1  # a match must end before position i (its follower at most at i - 1)
        floor = max(self.indexed - n, 0)
        while len(out) < cfg.recent:
            at = text.rfind(context, floor, end)
            if at < 0:
                break
            follower = at + n
            if aligned and at > 0 and _IDENT[text[at - 1]]:
                end = at + n - 1
                continue
            if follower >= self.indexed:
                out.append(text[follower])
                latest = follower if latest < 0 else latest
            end = at + n - 1
        if len(out) < cfg.recent and self.index is not None:
            keys, positions = self.index.keys[model], self.index.positions[model]
            h = np.uint64(hash_bytes(context))
            lo, hi = np.searchsorted(keys, h, "left"), np.searchsorted(keys, h, "right")
            take = positions[max(lo, hi - (cfg.recent - len(out))):hi][::-1]
            if len(take) and latest < 0:
                latest = int(take[0])
            out.extend(int(self.index.data[p]) for p in take)
        return out, latest

    def _workspace_followers(self, model: int, context: bytes, wanted: int) -> tuple[list[int], int]:
        if self.workspace is None:
            return [], -1
        keys, positions = self.workspace.keys[model], self.workspace.positions[model]
        h = np.uint64(hash_bytes(context))
        lo, hi = np.searchsorted(keys, h, "left"), np.searchsorted(keys, h, "right")
        latest = int(positions[hi - 1]) if hi > lo else -1
        take = positions[max(lo, hi - max(wanted, 0)):hi][::-1] if wanted > 0 else positions[:0]
        return [int(self.workspace.data[p]) for p in take], latest
