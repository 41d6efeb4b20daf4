"""The compiled part of a search step's bookkeeping: each search's best continuations (numba).

Every search keeps the best few of its beams' continuations each step. Picked per search in numpy, that took
a dozen array calls per search per byte, which a few dozen requests stepping together pay a few dozen times
a round; one compiled pass picks them for every search of the round (bench/search_step.py).
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True)
def best_continuations(grow: np.ndarray, row_offsets: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                                                  np.ndarray]:
    """Search s owns rows row_offsets[s]:row_offsets[s + 1] of `grow` (score of each beam's continuation by
    each byte; -inf: not allowed). Returns its `wanted[s]` best finite scores, best first, ties going to the
    lower beam, then the lower byte: scores and indices within the search (beam * 256 + byte), (searches,
    max(wanted)) each, and how many each search got."""
    searches = len(row_offsets) - 1
    width = max(wanted.max(), 1) if searches else 1
    scores = np.full((searches, width), -np.inf, dtype=grow.dtype)
    indices = np.zeros((searches, width), dtype=np.int64)
    found = np.zeros(searches, dtype=np.int64)
    for s in range(searches):
        k = wanted[s]
        n = 0
        first = row_offsets[s]
        for r in range(first, row_offsets[s + 1]):
            for b in range(grow.shape[1]):
                v = grow[r, b]
                if v == -np.inf or (n == k and not v > scores[s, k - 1]):
                    continue
                j = n if n < k else k - 1  # the slot it enters at, moved up past every lower score
                while j > 0 and scores[s, j - 1] < v:
                    scores[s, j] = scores[s, j - 1]
                    indices[s, j] = indices[s, j - 1]
                    j -= 1
                scores[s, j] = v
                indices[s, j] = (r - first) * grow.shape[1] + b
                if n < k:
                    n += 1
        found[s] = n
    return scores, indices, found


def compile_kernels() -> None:
    """Compile the kernel now (or load it from numba's cache beside this file), so that the first completion
    does not wait seconds for it; an engine calls this when it is made."""
    best_continuations(np.zeros((1, 256), dtype=np.float32), np.array([0, 1], dtype=np.int64),
                       np.array([2], dtype=np.int64))
