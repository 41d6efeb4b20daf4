"""Process-wide memory limits of the serving process that torch leaves open-ended.

A server that reads prefixes of every length in batches of every size meets a new LSTM call shape
on most requests. oneDNN keeps a compiled primitive per shape (`ONEDNN_PRIMITIVE_CACHE_CAPACITY`,
1,024 by default) and PyTorch's ideep bridge keeps its own per-shape computation cache
(`LRU_CACHE_CAPACITY`, 1,024): together about 0.9 MB per shape for the bundled model, so resident
memory grew by hundreds of MB over a 10-minute soak while the state cache held under 40 MB
(bench/soak.py, BENCHMARKS.md). A bounded number of entries keeps the shapes a steady load repeats
(a run of search steps with the same rows, the 256-byte chunks of long reads) and caps the rest.

This must happen before the first oneDNN call: `CompletionService.start` does it before loading
the model. Variables the operator set in the environment are left as they are. (Fixing glibc's mmap
threshold as well, so freed large buffers go back to the system, made every token completion 2.2x
slower through HTTP: each large per-step buffer then costs an mmap and fresh page faults.)
"""

from __future__ import annotations

import os

CACHE_VARIABLES = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY")


def bound_kernel_caches(entries: int) -> None:
    """Cap oneDNN's and ideep's per-shape caches at `entries` each (unless set in the environment)."""
    for name in CACHE_VARIABLES:
        os.environ.setdefault(name, str(entries))

