"""Bits per byte with and without the context models, on code the model never saw and on its own val split.

    python bench/context.py [--model default] [--unseen data/unseen] [--corpus data/default-corpus]

Builds nothing: run recipes/unseen-packages/build.sh (the unseen-package set) and the default model's
corpus build first. Prints, per set, BPC for the LSTM alone, with the document as context, and with the
file's folder as workspace, plus per-package rows for the unseen set and the wall time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from codelstm.commands.common import load_model, resolve_model_path  # noqa: E402
from codelstm.model.context import ContextIndex  # noqa: E402
from codelstm.model.mixer import MixerWeights  # noqa: E402
from codelstm.training.context_eval import evaluate_contexts  # noqa: E402
from codelstm.training.heldout import load_named, spread_by_package  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="default")
    p.add_argument("--mixer", type=Path, default=None, help="folder holding mixer.json (default: the model's)")
    p.add_argument("--unseen", type=Path, default=ROOT / "data/unseen")
    p.add_argument("--corpus", type=Path, default=ROOT / "data/default-corpus")
    p.add_argument("--bytes-per-package", type=int, default=16000, help="unseen set sample per package")
    p.add_argument("--val-bytes-per-package", type=int, default=4000, help="val split sample per package")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model, _ = load_model(args.model)
    weights = MixerWeights.load(args.mixer or resolve_model_path(args.model))
    if weights is None:
        sys.exit(f"no mixer.json in {args.mixer or resolve_model_path(args.model)}: run `codelstm mixer fit` first")
    report = {"model": args.model, "date": time.strftime("%Y-%m-%d"), "sets": {}}
    for label, folder, splits, per_package in (("unseen packages", args.unseen, ("train", "val"), args.bytes_per_package),
                                               ("same-package val split", args.corpus, ("val",),
                                                args.val_bytes_per_package)):
        if not (folder / "manifest.json").is_file():
            print(f"{label}: {folder} missing, skipped")
            continue
        pool = load_named(folder, splits)
        docs = spread_by_package(pool, per_package)
        result = evaluate_contexts(model, weights, docs, pool)
        report["sets"][label] = result.to_dict()
        print(f"\n{label}: {result.files} files, {result.bytes:,} bytes, {len({d.package for d in docs})} packages, "
              f"workspace {result.workspace_bytes / max(result.files, 1) / 1024:.0f} KB per file on average, "
              f"{result.seconds:.0f} s")
        for context, bpc in result.bpc.items():
            print(f"  BPC {context:<10} {bpc:.4f}")
        if label == "unseen packages":
            print("  per package (none / document / workspace):")
            for package, row in sorted(result.per_package.items()):
                print(f"    {package:<40} {row['none']:.3f} {row['document']:.3f} {row['workspace']:.3f}")
    sample = b"\x00".join(d.data for d in load_named(args.unseen, ("val",)))[:1 << 20]
    start = time.perf_counter()
    index = ContextIndex.build(sample, weights.config)
    built = time.perf_counter() - start
    report["workspace_index"] = {"text_bytes": len(sample), "index_bytes": index.nbytes, "build_s": round(built, 3)}
    print(f"\nworkspace index over {len(sample) / 2**20:.1f} MiB of text: {index.nbytes / 2**20:.0f} MiB "
          f"({index.nbytes / len(sample):.0f} bytes per text byte), built in {built:.2f} s")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
