"""Bits per byte with the context models mixed in (SPEC sections 7 and 8), and the evidence to fit the mixer.

For each held-out file, read from its start with a fresh state: the LSTM's probability of every byte, the
context models' predictions from the file so far (`document`) and, for `workspace`, also from the other
files of its folder (never the file itself), mixed by the checkpoint's mixer with online adaptation, as
a completion at that position would see them.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Iterable, Literal

import numpy as np
import torch

from codelstm.model.config import DOC_SEPARATOR
from codelstm.model.context import ContextIndex, document_predictions
from codelstm.model.mixer import Evidence, MixerWeights, bits, gather_evidence, mixed_target_probability
from codelstm.model.network import ByteLM, use_onednn
from codelstm.training.heldout import NamedDocument, folder_workspace

Context = Literal["none", "document", "workspace"]
CONTEXTS: tuple[Context, ...] = ("none", "document", "workspace")
WORKSPACE_MAX_BYTES = 1 << 20  # a file's folder mates beyond this are left out (nearest names first)


Scores = tuple[np.ndarray, np.ndarray]  # per position: log-probability of the actual byte, largest probability


@torch.no_grad()
def lstm_scores_many(model: ByteLM, docs: list[bytes], lanes: int = 16, chunk: int = 1024) -> list[Scores]:
    """Each doc's scores, as if read alone from a fresh state after a NUL.

    Documents are packed back to back into `lanes` rows (the model zeroes a row's state at each NUL, so
    every document starts fresh): a CPU reads 16 rows at little more than the cost of one, while a single
    sequence waits on one matrix-vector product after another.
    """
    rows: list[list[int]] = [[] for _ in range(min(lanes, max(len(docs), 1)))]
    sizes = [0] * len(rows)
    for i in sorted(range(len(docs)), key=lambda i: -len(docs[i])):  # longest first onto the emptiest row
        row = sizes.index(min(sizes))
        rows[row].append(i)
        sizes[row] += len(docs[i]) + 1
    longest = max(sizes)
    seq = torch.full((len(rows), longest + 1), DOC_SEPARATOR, dtype=torch.long)
    where: dict[int, tuple[int, int]] = {}
    for r, members in enumerate(rows):
        offset = 0
        for i in members:
            seq[r, offset + 1:offset + 1 + len(docs[i])] = torch.frombuffer(bytearray(docs[i]), dtype=torch.uint8).long()
            where[i] = (r, offset)  # the NUL before doc i sits at `offset`
            offset += len(docs[i]) + 1
    seq = seq.to(model.device)
    target_logprob = torch.empty(len(rows), longest)
    top = torch.empty(len(rows), longest)
    state = None
    for pos in range(0, longest, chunk):
        x, y = seq[:, pos:pos + chunk], seq[:, pos + 1:pos + chunk + 1]
        x = x[:, :y.size(1)]
        with use_onednn(True):
            logits, _, state = model(x, state)
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        target_logprob[:, pos:pos + y.size(1)] = logprobs.gather(2, y.unsqueeze(-1)).squeeze(-1).cpu()
        top[:, pos:pos + y.size(1)] = logprobs.max(dim=2).values.exp().cpu()
    out = []
    for i, doc in enumerate(docs):
        r, offset = where[i]
        out.append((target_logprob[r, offset:offset + len(doc)].numpy().copy(),
                    top[r, offset:offset + len(doc)].numpy().copy()))
    return out


def lstm_scores(model: ByteLM, doc: bytes) -> Scores:
    return lstm_scores_many(model, [doc])[0]


def evidence_for(doc: bytes, scores: Scores, weights: MixerWeights,
                 workspace: bytes = b"") -> Evidence:
    """One file's evidence: the LSTM's `scores` (from `lstm_scores`) and the context models over the file so
    far, and over `workspace` (NUL-separated files) when given."""
    index = ContextIndex.build(workspace, weights.config) if workspace else None
    predictions = document_predictions(doc, weights.config, index)
    return gather_evidence(doc, predictions, scores[0], scores[1], weights.config)


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
                      workspace_max_bytes: int = WORKSPACE_MAX_BYTES, progress: bool = True) -> ContextEvalResult:
    """BPC per context on `docs`; `pool` holds the files that can form each one's workspace (default: docs)."""
    from tqdm import tqdm

    contexts = tuple(contexts)
    pool = pool if pool is not None else docs
    start = time.perf_counter()
    totals = {c: 0.0 for c in contexts}
    packages: dict[str, dict[str, float]] = {}
    workspace_bytes = 0
    model.eval()
    all_scores = lstm_scores_many(model, [d.data for d in docs])
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
                workspace = folder_workspace(doc, pool, workspace_max_bytes)
                workspace_bytes += len(workspace)
                b = bits(mixed_target_probability(weights, evidence_for(doc.data, scores, weights, workspace)))
            totals[context] += b
            row[context] += b
    n = sum(len(d.data) for d in docs)
    per_package = {p: {c: round(v[c] / max(v["bytes"], 1), 4) for c in contexts} | {"bytes": int(v["bytes"])}
                   for p, v in packages.items()}
    return ContextEvalResult(len(docs), n, {c: totals[c] / max(n, 1) for c in contexts}, workspace_bytes,
                             time.perf_counter() - start, per_package)
