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
search and serving share one definition. `step_arrays` is called once per search step for all beams, so
it runs compiled (context_kernels.py): per beam one hash pass for every context length, each (model,
context) looked up by binary search in each index (an index holds all models' keys in one sorted array),
a longer order only where the next shorter one occurred, in the beam's own bytes or an index (a longer
context cannot occur where its own suffix does not).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codelstm.model.cache import common_prefix_length
from codelstm.model.context import EMPTY, MATCH_CAP, ContextConfig, ContextIndex, _IDENT, key_layout
from codelstm.model.context_kernels import predict_step


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
        self.workspace_bytes = len(workspace.data) if workspace is not None else 0  # the mixer's history gate
        self.recent = ContextIndex.build(document, config, start=self.indexed) if len(document) > self.indexed else None
        # the kernel's arguments that stay fixed for the view's life (context_kernels.predict_step)
        shift, mask = key_layout(config)
        no_keys, no_positions = np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int32)
        no_text = np.frombuffer(b"", dtype=np.uint8)
        older = index if index is not None and self.indexed else None
        self._fixed = (
            np.asarray(config.orders, dtype=np.int64), config.recent, config.identifier_max,
            np.array([m << shift for m in range(len(config.orders) + 1)], dtype=np.uint64), np.uint64(mask), _IDENT,
            *((self.recent.keys, self.recent.positions) if self.recent is not None else (no_keys, no_positions)),
            *((older.keys, older.positions, np.frombuffer(older.data, dtype=np.uint8),
               self.indexed if self.indexed < len(older.data) else -1) if older is not None
              else (no_keys, no_positions, no_text, -1)),
            *((workspace.keys, workspace.positions, np.frombuffer(workspace.data, dtype=np.uint8))
              if workspace is not None else (no_keys, no_positions, no_text)),
            MATCH_CAP,
        )
        self._document_array = np.frombuffer(document, dtype=np.uint8)

    @property
    def nbytes(self) -> int:
        """Memory of the per-view part (the recent bytes' index); the document's index is held elsewhere."""
        return self.recent.nbytes if self.recent is not None else 0

    def predict(self, generated: bytes = b"") -> PositionPrediction:
        """The models' view of the position after document + generated."""
        return self.predict_many([generated])[0]

    def predict_many(self, generated: list[bytes]) -> list[PositionPrediction]:
        """`predict` for several beams, from `step_arrays`."""
        followers, counts, match_byte, match_length = self.step_arrays(generated)
        return [PositionPrediction([row[:count].tolist() for row, count in zip(followers[b], counts[b])],
                                   int(match_byte[b]), int(match_length[b]), self.config.recent)
                for b in range(len(generated))]

    def step_arrays(self, generated: list[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every model's view of the position after document + each beam's bytes, in one compiled pass:
        followers (k, models, recent) int16, latest first, EMPTY-padded; their counts (k, models); the
        match model's byte (EMPTY: none) and verified length (k,). Models: the orders, then the identifier."""
        offsets = np.zeros(len(generated) + 1, dtype=np.int64)
        np.cumsum([len(g) for g in generated], out=offsets[1:])
        beams = np.frombuffer(b"".join(generated), dtype=np.uint8)
        return predict_step(self._document_array, beams, offsets, *self._fixed)
