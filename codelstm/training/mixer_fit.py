"""Fitting the mixer's selection logits on a corpus (the math is in docs/context.md).

The evidence of many documents (each model's probability of the actual byte, its bucket, whether it was
present) is stacked and the logits a[selector, model, bucket] and the gates' logits are fitted by Adam to
the mean -log2 p(actual byte) of the static mixture; online adaptation then starts from them per document.
"""

from __future__ import annotations

import numpy as np
import torch

from codelstm.model.mixer import FITTED_GATES, GATES, Evidence, MixerWeights, gate_classes
from codelstm.model.names import NameTable


def stack(evidence: list[Evidence]) -> Evidence:
    return Evidence(*(np.concatenate([getattr(e, f) for e in evidence]) for f in
                      ("target_probability", "bucket", "present", "selector", "history")))


def fit_logits(weights: MixerWeights, evidence: list[Evidence], steps: int = 300, lr: float = 0.1,
               l2: float = 1e-4, max_rows: int = 1_000_000, progress: bool = False,
               fit_history: bool = False) -> MixerWeights:
    """Return new weights whose logits minimise the static mixture's bits on `evidence` (full batch Adam on
    at most `max_rows` positions, an evenly spaced subset: a few thousand parameters need no more). The gates
    of `FITTED_GATES` are fitted with a; the history gate only with `fit_history` (off by default:
    docs/context.md says why), else it stays as given."""
    from tqdm import tqdm

    e = stack(evidence)
    if len(e.selector) > max_rows:
        keep = np.linspace(0, len(e.selector) - 1, max_rows).astype(np.int64)
        e = Evidence(e.target_probability[keep], e.bucket[keep], e.present[keep], e.selector[keep], e.history[keep])
    prob = torch.from_numpy(np.maximum(e.target_probability, 1e-12))
    present = torch.from_numpy(e.present)
    shape = weights.logits.shape
    models = np.arange(shape[1])[None, :]
    index = torch.from_numpy((e.selector[:, None] * shape[1] + models) * shape[2] + e.bucket)
    classes = gate_classes(e, weights.config)
    fitted = set(FITTED_GATES) | ({"history"} if fit_history else set())
    gates = {name: torch.tensor(weights.gates[name], dtype=torch.float64).flatten().requires_grad_(name in fitted)
             for name in GATES}
    gate_index = {name: torch.from_numpy(classes[:, g][:, None] * shape[1] + models) for g, name in enumerate(GATES)}
    logits = torch.tensor(weights.logits, dtype=torch.float64).flatten().requires_grad_(True)
    opt = torch.optim.Adam([logits, *(gates[name] for name in GATES if name in fitted)], lr=lr)
    log_prob = prob.log()
    for _ in tqdm(range(steps), desc="mixer fit", unit="step", disable=not progress, dynamic_ncols=True):
        a = logits[index]
        for name in GATES:
            a = a + gates[name][gate_index[name]]
        a = a.masked_fill(~present, -torch.inf)
        loss = -(torch.logsumexp(a + log_prob, dim=1) - torch.logsumexp(a, dim=1)).mean() \
            + l2 * ((logits ** 2).sum() + sum((gates[name] ** 2).sum() for name in fitted))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return MixerWeights(weights.config, logits.detach().view(shape).numpy().copy(), weights.online_rate,
                        weights.fitted_on, {name: gates[name].detach().view(weights.gates[name].shape).numpy().copy()
                                            for name in GATES}, weights.names)


def names_from_corpus(corpus, progress: bool = False) -> NameTable:
    """The names table counted on a corpus folder's train split (the mixer is fitted on other files)."""
    from tqdm import tqdm

    from codelstm.training.heldout import load_named

    train = load_named(corpus, ("train",))
    table = NameTable.build(d.data for d in tqdm(train, desc="names table", unit="file", disable=not progress,
                                                 dynamic_ncols=True))
    table.built_from = {"data": str(corpus), "split": "train", "files": len(train),
                        "bytes": sum(len(d.data) for d in train),
                        "weights": "files writing each name"}
    return table
