"""Bits per byte with the context models mixed in (SPEC sections 7 and 8), and the evidence to fit the mixer.

For each held-out file, read from its start with a fresh state: the LSTM's probability of every byte, the
context models' predictions from the file so far (`document`) and, for `workspace`, also from the other
files of its folder (never the file itself), mixed by the checkpoint's mixer with online adaptation, as
a completion at that position would see them.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Iterable, Literal

import numpy as np

from codelstm.model.context import ContextIndex, document_predictions
from codelstm.model.context_view import ContextView
from codelstm.model.engine import CONTEXT_DOCUMENT_CAP
from codelstm.model.mixer import DocumentMixer, Evidence, MixerWeights, bits, gather_evidence, mixed_target_probability
from codelstm.model.names import document_names
from codelstm.model.network import ByteLM
from codelstm.model.scoring import Scores, lstm_scores_many
from codelstm.training.heldout import NamedDocument, folder_workspace

Context = Literal["none", "document", "workspace"]
CONTEXTS: tuple[Context, ...] = ("none", "document", "workspace")
WORKSPACE_MAX_BYTES = 1 << 20  # a file's folder mates beyond this are left out (nearest names first)


def evidence_for(doc: bytes, scores: Scores, weights: MixerWeights,
                 workspace: bytes = b"") -> Evidence:
    """One file's evidence: the LSTM's `scores` (from `lstm_scores`) and the context models over the file so
    far, and over `workspace` (NUL-separated files) when given; the names model's when the weights have a table."""
    index = ContextIndex.build(workspace, weights.config) if workspace else None
    predictions = document_predictions(doc, weights.config, index)
    names = document_names(doc, weights.names) if weights.names is not None else None
    return gather_evidence(doc, predictions, scores[0], scores[1], weights.config, len(workspace), names)


class PrefixMixers:
    """The mixers a server would build for completions at positions of one file: the context models over the
    file's text before the position (in the engine's window when the file is longer than it) and over a
    workspace, with the fitted weights and no online adaptation (`InferenceEngine._document_mixer`).

    The file is indexed once (per window start) and every position gets a view over that index cut at the
    position (`ContextView` ignores indexed text past the end of its document), so a position costs no
    rebuild; the workspace is indexed once per file."""

    def __init__(self, weights: MixerWeights, doc: bytes, workspace: bytes = b"") -> None:
        self.weights = weights
        self.doc = doc
        self.workspace = ContextIndex.build(workspace, weights.config) if workspace else None
        self._indexes: dict[int, ContextIndex] = {}  # window start -> index over doc[start:]

    def at(self, position: int) -> DocumentMixer:
        """The mixer for a completion after doc[:position]."""
        start = 0
        if position > CONTEXT_DOCUMENT_CAP:  # the engine's window: its start moves in steps of a quarter
            step = CONTEXT_DOCUMENT_CAP // 4
            start = math.ceil((position - CONTEXT_DOCUMENT_CAP) / step) * step
        index = self._indexes.get(start)
        if index is None:
            index = self._indexes[start] = ContextIndex.build(self.doc[start:], self.weights.config)
        text = self.doc[start:position]
        return DocumentMixer(self.weights, ContextView(self.weights.config, text, index, self.workspace))


@dataclass
class ContextEvalResult:
    files: int
    bytes: int
    bpc: dict[str, float]  # per context: none / document / workspace
    workspace_bytes: int = 0  # total workspace bytes the files were given (workspace context)
    seconds: float = 0.0
    per_package: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate_contexts(model: ByteLM, weights: MixerWeights, docs: list[NamedDocument],
                      pool: list[NamedDocument] | None = None, contexts: Iterable[Context] = CONTEXTS,
                      workspace_max_bytes: int = WORKSPACE_MAX_BYTES, progress: bool = True,
                      workspaces: dict[str, bytes] | None = None) -> ContextEvalResult:
    """BPC per context on `docs`. Each one's workspace: `workspaces[name]` when given, else the other files of
    its folder among `pool` (default: docs)."""
    from tqdm import tqdm

    contexts = tuple(contexts)
    pool = pool if pool is not None else docs
    start = time.perf_counter()
    totals = {c: 0.0 for c in contexts}
    packages: dict[str, dict[str, float]] = {}
    workspace_bytes = 0
    model.eval()
    all_scores = lstm_scores_many(model, [d.data for d in docs], progress=progress)
    for doc, scores in tqdm(zip(docs, all_scores), desc="eval (context)", unit="file", total=len(docs),
                            disable=not progress, dynamic_ncols=True):
        row = packages.setdefault(doc.package, {"bytes": 0, **{c: 0.0 for c in contexts}})
        row["bytes"] += len(doc.data)
        for context in contexts:
            if context == "none":
                b = bits(np.exp(scores[0].astype(np.float64)))
            elif context == "document":
                b = bits(mixed_target_probability(weights, evidence_for(doc.data, scores, weights)))
            else:
                workspace = (workspaces[doc.name] if workspaces is not None
                             else folder_workspace(doc, pool, workspace_max_bytes))
                workspace_bytes += len(workspace)
                b = bits(mixed_target_probability(weights, evidence_for(doc.data, scores, weights, workspace)))
            totals[context] += b
            row[context] += b
    n = sum(len(d.data) for d in docs)
    per_package = {p: {c: round(v[c] / max(v["bytes"], 1), 4) for c in contexts} | {"bytes": int(v["bytes"])}
                   for p, v in packages.items()}
    return ContextEvalResult(len(docs), n, {c: totals[c] / max(n, 1) for c in contexts}, workspace_bytes,
                             time.perf_counter() - start, per_package)
