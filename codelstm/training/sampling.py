"""Where the search-based metrics look: deterministic positions spread through each whole file.

Identifier accuracy and keystrokes saved cost a completion search per position, so they are measured
on a sample. Sampling only the first bytes of each file would mostly measure its licence header, which
many files of a project share word for word; these positions are spread evenly instead, and the same
every run, so two models are compared at the same places. No torch here: the command line reads the
defaults without loading it.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass


@dataclass(frozen=True)
class Sampling:
    """Where the search-based metrics look; every count here is reported with the results."""

    files: int = 16  # files, evenly spaced through the list (the first ones often share one source)
    identifiers: int = 32  # identifier starts per file, the first one after each of evenly spaced byte offsets
    typed_bytes: int = 128  # bytes the simulated typist types per file ...
    windows: int = 2  # ... in this many stretches spread through the file, each from a line start


def spread(count: int, k: int) -> list[int]:
    """k indices evenly spaced over range(count), each at the middle of its share (all when k >= count)."""
    if k >= count:
        return list(range(count))
    return [(2 * j + 1) * count // (2 * k) for j in range(k)]


def spread_positions(positions: list[int], length: int, k: int) -> list[int]:
    """Indices of up to k of the sorted `positions` (in a text of `length` bytes): for each of k evenly spaced
    byte offsets, the first position at or after it. Spread by bytes, not by count, so that a dense stretch
    (a licence header is prose: an identifier every few bytes) gets no more than its share of the file."""
    if k >= len(positions):
        return list(range(len(positions)))
    picked: list[int] = []
    for target in spread(length, k):
        i = bisect.bisect_left(positions, target)
        if i < len(positions) and (not picked or i > picked[-1]):
            picked.append(i)
    return picked


def typist_windows(doc: bytes, typed_bytes: int, windows: int) -> list[tuple[int, int]]:
    """(start, end) stretches for the typist: `windows` of them, evenly spread through the file, each starting
    at a line start and together `typed_bytes` long at most (the whole file when it is that short)."""
    if len(doc) <= typed_bytes:
        return [(0, len(doc))] if doc else []
    width = max(1, typed_bytes // windows)
    out = []
    for j in range(windows):
        start = (2 * j + 1) * len(doc) // (2 * windows) - width // 2
        newline = doc.rfind(b"\n", 0, max(start, 0))
        start = newline + 1 if newline >= 0 else 0
        if out and start < out[-1][1]:
            start = out[-1][1]
        end = min(start + width, len(doc))
        if end > start:
            out.append((start, end))
    return out
