"""Find neurons: rank every (layer, quantity, neuron) of a trace by Pearson correlation with text features.

"Exploring LSTMs" found its indentation and counting neurons by eye; here each feature gets the units whose
activation over the text follows it best, as |r| over the bytes where the feature is defined.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from codelstm.model.activations import Trace


@dataclass(frozen=True)
class NeuronScore:
    layer: int
    quantity: str
    neuron: int
    r: float  # Pearson correlation over the bytes where the feature is defined


@dataclass(frozen=True)
class FeatureRanking:
    feature: str
    defined: int  # bytes where the feature has a value
    constant: bool  # the feature never varies over this text, so nothing can correlate with it
    best: list[NeuronScore]  # best first by |r|


def correlations(values: torch.Tensor | np.ndarray, feature: np.ndarray) -> np.ndarray:
    """Pearson r of each column of `values` (T, N) with `feature` (T,), over the non-NaN bytes of the feature.

    A constant column (a dead or saturated unit) or a constant feature has no correlation: 0, not NaN."""
    v = values.double().numpy() if isinstance(values, torch.Tensor) else np.asarray(values, dtype=np.float64)
    mask = ~np.isnan(feature)
    if mask.sum() < 2:
        return np.zeros(v.shape[1])
    v, y = v[mask], feature[mask]
    v = v - v.mean(axis=0)
    y = y - y.mean()
    denom = np.sqrt((v * v).sum(axis=0) * (y * y).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (v * y[:, None]).sum(axis=0) / denom
    return np.nan_to_num(np.clip(r, -1.0, 1.0), nan=0.0)


def rank_neurons(trace: Trace, features: dict[str, np.ndarray], layers: list[int] | None = None,
                 quantities: tuple[str, ...] | list[str] = ("h", "c"), top: int = 5) -> list[FeatureRanking]:
    """For each feature, the `top` units of the given layers and quantities with the largest |r|."""
    layers = list(range(trace.num_layers)) if layers is None else layers
    rankings = []
    for name, feature in features.items():
        if len(feature) != len(trace.data):
            raise ValueError(f"feature {name} has {len(feature)} values for {len(trace.data)} bytes")
        defined = ~np.isnan(feature)
        constant = bool(defined.sum() < 2 or np.nanmax(feature) == np.nanmin(feature))
        scores: list[NeuronScore] = []
        if not constant:
            for k in layers:
                for q in quantities:
                    r = correlations(trace.layers[k][q], feature)
                    best = np.argsort(-np.abs(r))[:top]
                    scores.extend(NeuronScore(k, q, int(j), float(r[j])) for j in best)
        scores.sort(key=lambda s: -abs(s.r))
        rankings.append(FeatureRanking(name, int(defined.sum()), constant, scores[:top]))
    return rankings
