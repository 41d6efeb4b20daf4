"""Process-wide memory limits of the serving process that torch leaves open-ended.

A server that reads prefixes of every length in batches of every size meets a new LSTM call shape
on most requests. oneDNN keeps a compiled primitive per shape (`ONEDNN_PRIMITIVE_CACHE_CAPACITY`,
1,024 by default) and PyTorch's ideep bridge keeps its own per-shape computation cache
(`LRU_CACHE_CAPACITY`, 1,024): together about 0.9 MB per shape for the bundled model
(bench/native_memory.py), so resident memory grew by hundreds of MB over a 10-minute soak while the
state cache held under 40 MB (bench/soak.py, BENCHMARKS.md). A bounded number of entries keeps the shapes a steady load repeats
(a run of search steps with the same rows, the 256-byte chunks of long reads) and caps the rest.

This must happen before the first oneDNN call: `CompletionService.start` does it before loading
the model. Variables the operator set in the environment are left as they are.

Request bodies of up to a megabyte, and their copies, come and go by the thousand; glibc keeps the
freed memory in its heaps, fragmented, and resident memory climbed by about 300 MB in the soak's
third minute and stayed there. `trim_periodically` hands free heap pages back every few seconds
(`malloc_trim`). Fixing glibc's mmap threshold instead, so that large blocks are unmapped when freed,
made every token completion 2.2x slower through HTTP: each large per-step buffer then cost an mmap
and fresh page faults.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading

CACHE_VARIABLES = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY")


def bound_kernel_caches(entries: int) -> None:
    """Cap oneDNN's and ideep's per-shape caches at `entries` each (unless set in the environment)."""
    for name in CACHE_VARIABLES:
        os.environ.setdefault(name, str(entries))



def trim_periodically(every_s: float, stop: threading.Event) -> threading.Thread | None:
    """Return glibc's free heap memory to the system every `every_s` seconds until `stop` is set (a daemon
    thread); None where the C library is not glibc."""
    try:
        trim = ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim
    except (OSError, AttributeError):
        return None

    def run() -> None:
        while not stop.wait(every_s):
            trim(0)

    thread = threading.Thread(target=run, name="malloc-trim", daemon=True)
    thread.start()
    return thread
