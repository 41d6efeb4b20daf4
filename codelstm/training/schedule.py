"""Learning-rate schedule: linear warm-up, then cosine decay to a floor, over a step or time budget."""

from __future__ import annotations

import math


def lr_at(progress: float, step: int, base_lr: float, warmup_steps: int, min_lr_ratio: float = 0.1) -> float:
    """`progress` in [0, 1] is the share of the budget spent (steps or minutes, whichever is further along)."""
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    progress = min(max(progress, 0.0), 1.0)
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return base_lr * (min_lr_ratio + (1.0 - min_lr_ratio) * cosine)
