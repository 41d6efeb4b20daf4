"""Resident memory that the state cache's own count does not see (issue 13's soak): per LSTM call shape in
oneDNN's and ideep's kernel caches, and per cached checkpoint.

    python bench/native_memory.py [--shapes 250] [--entries 1024 128 16]

For each cap on the kernel caches (`codelstm/server/memory.py`), a fresh process reads prefixes of
`--shapes` random (rows, bytes) shapes with the bundled model in bfloat16 on oneDNN, as the server's
prefill does, and prints its RSS growth; then the resident bytes of one bfloat16 checkpoint (state and
next-byte logits, kept by the thousand in the state cache) against the bytes its tensors hold.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import random, sys
import torch
from codelstm.server.memory import bound_kernel_caches
bound_kernel_caches(int(sys.argv[1]))
torch.set_num_threads(1)
from codelstm.model import load_checkpoint
from codelstm.model.generate import prefill_many
from codelstm.paths import DEFAULT_MODEL

def rss_mb():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS'):
            return int(line.split()[1]) / 1024

model = load_checkpoint(DEFAULT_MODEL)[0].to(torch.bfloat16).eval()
rng = random.Random(0)
with torch.no_grad():
    prefill_many(model, [b"x"], [None], onednn_from=1)
    start = rss_mb()
    for _ in range(int(sys.argv[2])):
        rows, length = rng.randint(1, 8), rng.randint(1, 512)
        prefill_many(model, [b"x" * length] * rows, [None] * rows, onednn_from=1)
print(rss_mb() - start)
"""

CHECKPOINTS = """
import torch
from codelstm.model import load_checkpoint
from codelstm.model.cache import _nbytes
from codelstm.model.generate import prefill_many
from codelstm.paths import DEFAULT_MODEL

def rss_kb():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS'):
            return int(line.split()[1])

model = load_checkpoint(DEFAULT_MODEL)[0].to(torch.bfloat16).eval()
with torch.no_grad():
    state, logits = prefill_many(model, [b"def f(x):\\n    return x"], [None])[0]
n = 20000
start = rss_kb()
kept = [(tuple(s.clone() for s in state), logits.clone()) for _ in range(n)]
data = sum(t.numel() * t.element_size() for t in (*state, logits))
print(data, (rss_kb() - start) * 1024 / n, _nbytes((state, logits)))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shapes", type=int, default=250)
    p.add_argument("--entries", type=int, nargs="+", default=[1024, 128, 16])
    args = p.parse_args()
    env_note = "ONEDNN_PRIMITIVE_CACHE_CAPACITY and LRU_CACHE_CAPACITY each"
    for entries in args.entries:
        out = subprocess.run([sys.executable, "-c", CHILD, str(entries), str(args.shapes)], cwd=ROOT,
                             capture_output=True, text=True, check=True, env={"OMP_NUM_THREADS": "1"})  # no inherited caps
        print(f"{args.shapes} random prefill shapes, {entries:>5} entries ({env_note}): "
              f"RSS +{float(out.stdout.split()[-1]):.0f} MB")
    out = subprocess.run([sys.executable, "-c", CHECKPOINTS], cwd=ROOT, capture_output=True, text=True, check=True)
    data, resident, counted = out.stdout.split()
    print(f"one bfloat16 checkpoint: {int(data):,} bytes of tensor data, {float(resident):,.0f} bytes resident "
          f"(20,000 kept), {int(counted):,} counted by the state cache")


if __name__ == "__main__":
    main()
