"""Fitting the mixer's selection logits on a corpus (the math is in docs/context.md).

The evidence of many documents (each model's probability of the actual byte, its bucket, whether it was
present) is stacked and the logits a[selector, model, bucket] and h[history bucket, model] are fitted by
Adam to the mean -log2 p(actual byte) of the static mixture; online adaptation then starts from them per
document.
"""

from __future__ import annotations

import numpy as np
import torch

from codelstm.model.mixer import Evidence, MixerWeights


def stack(evidence: list[Evidence]) -> Evidence:
    return Evidence(*(np.concatenate([getattr(e, f) for e in evidence]) for f in
                      ("target_probability", "bucket", "present", "selector", "history")))


def fit_logits(weights: MixerWeights, evidence: list[Evidence], steps: int = 300, lr: float = 0.1,
               l2: float = 1e-4, max_rows: int = 1_000_000, progress: bool = False,
               fit_history: bool = False) -> MixerWeights:
    """Return new weights whose logits minimise the static mixture's bits on `evidence` (full batch Adam on
    at most `max_rows` positions, an evenly spaced subset: a few hundred parameters need no more). The history
    term is fitted only with `fit_history` (off by default: docs/context.md says why); else it stays as given."""
    from tqdm import tqdm

    e = stack(evidence)
    if len(e.selector) > max_rows:
        keep = np.linspace(0, len(e.selector) - 1, max_rows).astype(np.int64)
        e = Evidence(e.target_probability[keep], e.bucket[keep], e.present[keep], e.selector[keep], e.history[keep])
    prob = torch.from_numpy(np.maximum(e.target_probability, 1e-12))
    present = torch.from_numpy(e.present)
    shape = weights.logits.shape
    index = torch.from_numpy((e.selector[:, None] * shape[1] + np.arange(shape[1])[None, :]) * shape[2] + e.bucket)
    history_index = torch.from_numpy(e.history[:, None] * shape[1] + np.arange(shape[1])[None, :])
    logits = torch.tensor(weights.logits, dtype=torch.float64).flatten().requires_grad_(True)
    history = torch.tensor(weights.history_logits, dtype=torch.float64).flatten().requires_grad_(fit_history)
    opt = torch.optim.Adam([logits, history] if fit_history else [logits], lr=lr)
    log_prob = prob.log()
    for _ in tqdm(range(steps), desc="mixer fit", unit="step", disable=not progress, dynamic_ncols=True):
        a = (logits[index] + history[history_index]).masked_fill(~present, -torch.inf)
        loss = -(torch.logsumexp(a + log_prob, dim=1) - torch.logsumexp(a, dim=1)).mean() \
            + l2 * ((logits ** 2).sum() + (history ** 2).sum())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return MixerWeights(weights.config, logits.detach().view(shape).numpy().copy(), weights.online_rate,
                        weights.fitted_on, history.detach().view(weights.history_logits.shape).numpy().copy())
