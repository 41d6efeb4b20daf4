"""Where a held-out set's bits go: the LSTM alone's BPC per package and for the files that cost the most bits.

    python bench/bpc_by_package.py [--model default] [--data data/unseen] [--split val|all] [--files 10]

A set's BPC is a mean over bytes, so the packages with the most bytes weigh most: the unseen set's val
split is about half sympy. This prints, per package (a file name's first two parts), its bytes, its BPC
and its share of all bits, then the files with the most bits. Each file is read from a fresh state, as
`codelstm eval` reads it (the same packed read: `lstm_scores_many`).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from codelstm.commands.common import load_model  # noqa: E402
from codelstm.model.scoring import lstm_scores_many  # noqa: E402
from codelstm.training.heldout import load_named  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="default")
    p.add_argument("--data", type=Path, default=ROOT / "data/unseen")
    p.add_argument("--split", choices=("val", "all"), default="val")
    p.add_argument("--files", type=int, default=10, help="how many of the costliest files to list")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model, _ = load_model(args.model)
    docs = [d for d in load_named(args.data, ("train", "val") if args.split == "all" else ("val",)) if d.data]
    scores = lstm_scores_many(model, [d.data for d in docs], progress=True)
    bits = [-float(logprob.sum()) / math.log(2) for logprob, _ in scores]
    total_bits, total_bytes = sum(bits), sum(len(d.data) for d in docs)
    print(f"{args.data} ({args.split}): {len(docs)} files, {total_bytes:,} bytes, BPC {total_bits / total_bytes:.4f}")
    packages: dict[str, list[float]] = {}
    for d, b in zip(docs, bits):
        row = packages.setdefault(d.package, [0, 0.0])
        row[0] += len(d.data)
        row[1] += b
    print("\n| package | bytes | share of bytes | BPC | share of bits |\n|---|---|---|---|---|")
    for package, (size, b) in sorted(packages.items(), key=lambda kv: -kv[1][1]):
        print(f"| {package} | {size:,} | {size / total_bytes:.1%} | {b / size:.3f} | {b / total_bits:.1%} |")
    print(f"\nthe {args.files} files with the most bits:\n| file | bytes | BPC | share of bits |\n|---|---|---|---|")
    for i in sorted(range(len(docs)), key=lambda i: -bits[i])[:args.files]:
        print(f"| {docs[i].name} | {len(docs[i].data):,} | {bits[i] / len(docs[i].data):.3f} | "
              f"{bits[i] / total_bits:.1%} |")


if __name__ == "__main__":
    main()
