"""`codelstm eval` speed: held-out BPC throughput before and after packing, and the search metrics' time.

Usage: python bench/eval_speed.py [--model default] [--data CORPUS | FILE...] [--bytes 200000] [--threads 2]
Prints bytes/s of the old BPC read (documents padded to the longest of their batch of 32, 512-byte
chunks, the kernel the process defaults to: `codelstm/training/evaluate.py` before this change) and
of the packed read, both in the precision `--precision` resolves to, the packed one also in float32,
their ratio and the BPC each gave; then the seconds each metric of `evaluate` takes with its default
sampling. Without --data or files it reads Python sources of packages installed in this venv (never in
the default model's corpus), whole files drawn in a fixed order up to --bytes.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F

from codelstm.model import load_checkpoint
from codelstm.model.config import DOC_SEPARATOR
from codelstm.model.network import ByteLM
from codelstm.training.data import open_stream, split_documents, spread_sample
from codelstm.training.evaluate import LOG2E, document_nll_bits, resolve_precision
from codelstm.training.metrics import evaluate
from codelstm.training.sampling import Sampling

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("pygls", "lsprotocol", "uvicorn", "safetensors", "networkx")  # none in recipes/default-model/packages.txt


@torch.no_grad()
def padded_nll_bits(model: ByteLM, docs: list[bytes], precision: str, batch_docs: int = 32,
                    chunk: int = 512) -> tuple[float, int]:
    """The read `codelstm eval` and validation used before: batches of 32 documents padded to the longest."""
    model.eval()
    total_bits, total_bytes = 0.0, 0
    order = sorted(range(len(docs)), key=lambda i: len(docs[i]))
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bfloat16"):
        for start in range(0, len(order), batch_docs):
            group = [docs[i] for i in order[start:start + batch_docs]]
            longest = max(len(d) for d in group)
            seq = torch.full((len(group), longest + 1), DOC_SEPARATOR, dtype=torch.long)
            mask = torch.zeros((len(group), longest), dtype=torch.bool)
            for row, doc in enumerate(group):
                seq[row, 1:len(doc) + 1] = torch.frombuffer(bytearray(doc), dtype=torch.uint8).long()
                mask[row, :len(doc)] = True
            state = None
            for pos in range(0, longest, chunk):
                x, y, m = seq[:, pos:pos + chunk], seq[:, pos + 1:pos + chunk + 1], mask[:, pos:pos + chunk]
                logits, _, state = model(x[:, : y.size(1)], state)
                nll = F.cross_entropy(logits.float().reshape(-1, 256), y.reshape(-1), reduction="none")
                total_bits += float((nll * m.reshape(-1)).sum()) * LOG2E
            total_bytes += int(mask.sum())
    return total_bits, total_bytes


def venv_sources(max_bytes: int) -> list[bytes]:
    site = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    docs = [p.read_bytes() for pkg in PACKAGES for p in sorted((site / pkg).rglob("*.py")) if p.stat().st_size]
    return spread_sample([d for d in docs if b"\0" not in d], max_bytes)


def timed(label: str, fn, n_bytes: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    bits, n = fn()
    seconds = time.perf_counter() - t0
    print(f"  {label:<44} {n / seconds / 1000:8.1f} KB/s  {seconds:7.1f} s  BPC {bits / n:.4f}", flush=True)
    return n / seconds, bits / n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="*", type=Path)
    p.add_argument("--model", default=str(ROOT / "codelstm" / "default_model"))
    p.add_argument("--data", type=Path, help="corpus folder: its val.bin")
    p.add_argument("--bytes", type=int, default=200_000, help="held-out bytes (whole files, fixed order)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default="auto")
    p.add_argument("--skip-old", action="store_true", help="only the packed read (the old one takes minutes)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.data:
        docs = spread_sample(split_documents(open_stream(args.data / "val.bin")), args.bytes)
    elif args.files:
        docs = spread_sample([f.read_bytes() for f in args.files], args.bytes)
    else:
        docs = venv_sources(args.bytes)
    model, _ = load_checkpoint(args.model)
    precision = resolve_precision(args.precision, model.device)
    n = sum(map(len, docs))
    print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.processor() or platform.machine()}, "
          f"{args.threads} threads, load average {' '.join(f'{x:.1f}' for x in __import__('os').getloadavg())}")
    print(f"{len(docs)} files, {n:,} bytes, longest {max(map(len, docs)):,}; model {args.model}")
    document_nll_bits(model, docs[:2], precision=precision)  # warm-up: oneDNN builds its kernels once
    new, new_bpc = timed(f"packed lanes, {precision}", lambda: document_nll_bits(model, docs, precision=precision), n)
    if precision != "float32":
        timed("packed lanes, float32", lambda: document_nll_bits(model, docs, precision="float32"), n)
    if not args.skip_old:
        old, old_bpc = timed(f"old: padded batches of 32, {precision}", lambda: padded_nll_bits(model, docs, precision), n)
        print(f"  speed-up {new / old:.1f}x; BPC difference {abs(new_bpc - old_bpc):.5f}")
    sampling = Sampling()
    t0 = time.perf_counter()
    result = evaluate(model, docs, sampling, precision=precision)
    print(f"evaluate() with the default sampling ({result.sample_files} files, {result.identifiers} identifiers, "
          f"{result.typed_chars} characters typed in {result.typist_windows} stretches): "
          f"{time.perf_counter() - t0:.1f} s; " + ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items()))
    print(f"  BPC {result.bpc:.4f}, top-1 {result.top1:.1%}, top-5 {result.top5:.1%}, "
          f"keystrokes saved {result.keystrokes_saved:.1%}")


if __name__ == "__main__":
    main()
