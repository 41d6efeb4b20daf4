"""Process-wide memory limits of the serving process that torch and the C library leave open-ended.

A server that reads prefixes of every length in batches of every size meets a new LSTM call shape
on most requests. oneDNN keeps a compiled primitive per shape (`ONEDNN_PRIMITIVE_CACHE_CAPACITY`,
1,024 by default) and PyTorch's ideep bridge keeps its own per-shape computation cache
(`LRU_CACHE_CAPACITY`, 1,024): together about 0.9 MB per shape for the bundled model, so resident
memory grew by hundreds of MB over a 10-minute soak while the state cache held under 40 MB
(bench/soak.py, BENCHMARKS.md). A bounded number of entries keeps the shapes a steady load repeats
(a run of search steps with the same rows, the 256-byte chunks of long reads) and caps the rest.

glibc raises its mmap threshold each time a large block is freed, after which the megabyte-sized
request bodies and prefill tensors come from the heap and fragment it; a fixed threshold sends
them back to the system when freed.

Both must be set before the first oneDNN call: `CompletionService.start` does it before loading
the model. Variables the operator set in the environment are left as they are.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger("codelstm.server")

CACHE_VARIABLES = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY")
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number (malloc.h)
MMAP_THRESHOLD_BYTES = 256 << 10  # blocks this large or larger are mmapped and returned when freed


def bound_kernel_caches(entries: int) -> None:
    """Cap oneDNN's and ideep's per-shape caches at `entries` each (unless set in the environment)."""
    for name in CACHE_VARIABLES:
        os.environ.setdefault(name, str(entries))


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Stop glibc from raising its mmap threshold (a no-op elsewhere); True when applied."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to fix
        return False
