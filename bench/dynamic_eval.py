"""Dynamic evaluation (issue 12 item 5): BPC and cost of letting the LSTM adapt to each file as it reads it.

    python bench/dynamic_eval.py [--model default] [--file-bytes 6000] [--tune-files 12]

The learning rate of each variant (`codelstm/training/dynamic_eval.py`: `full`, `head_bias`) is chosen
from a small grid on the default corpus's own val split (files the model did not train on), never on
the unseen set; then the unseen-package set (recipes/unseen-packages/, one file per package in
bench/context.py's order) is read with the LSTM alone, and with each variant, each also with the context
models mixed in (document; workspace: the file's folder mates). Every file is cut to its first
`--file-bytes` (full adaptation reads about 1-2 KB/s on one core). Prints BPC, seconds and KB/s per row,
in float32 on `--threads` threads.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from codelstm.commands.common import load_model, resolve_model_path  # noqa: E402
from codelstm.model.mixer import MixerWeights, bits, mixed_target_probability  # noqa: E402
from codelstm.model.scoring import lstm_scores_many  # noqa: E402
from codelstm.training.context_eval import WORKSPACE_MAX_BYTES, evidence_for  # noqa: E402
from codelstm.training.dynamic_eval import DynamicSettings, dynamic_scores  # noqa: E402
from codelstm.training.heldout import NamedDocument, folder_workspace, load_named, spread_by_package  # noqa: E402

GRID = {"full": (0.003, 0.01), "head_bias": (0.1, 0.3)}


def cut(doc: NamedDocument, size: int) -> NamedDocument:
    return replace(doc, data=doc.data[:size])


def lstm_bpc(scores: list, docs: list) -> float:
    return sum(bits(np.exp(s[0].astype(np.float64))) for s in scores) / sum(len(d.data) for d in docs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="default")
    p.add_argument("--unseen", type=Path, default=ROOT / "data/unseen")
    p.add_argument("--corpus", type=Path, default=ROOT / "data/default-corpus")
    p.add_argument("--file-bytes", type=int, default=6000, help="each file cut to its first this many bytes")
    p.add_argument("--tune-files", type=int, default=12, help="val-split files for the grid")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model, _ = load_model(args.model)
    model = model.float().eval()
    weights = MixerWeights.load(resolve_model_path(args.model))
    report: dict = {"model": args.model, "date": time.strftime("%Y-%m-%d %H:%M"), "threads": args.threads}

    tune = [cut(d, args.file_bytes) for d in spread_by_package(load_named(args.corpus, ("val",)), 1)[:args.tune_files]]
    chosen: dict[str, DynamicSettings] = {}
    report["tuning"] = {"files": len(tune), "bytes": sum(len(d.data) for d in tune),
                        "none": round(lstm_bpc(lstm_scores_many(model, [d.data for d in tune]), tune), 4)}
    print(f"tuning on the val split: {len(tune)} files, {report['tuning']['bytes']:,} bytes, "
          f"LSTM alone {report['tuning']['none']:.4f}")
    for variant, rates in GRID.items():
        results = {}
        for lr in rates:
            settings = DynamicSettings(variant, lr)
            results[lr] = lstm_bpc([dynamic_scores(model, d.data, settings) for d in tune], tune)
            print(f"  {variant:<9} lr {lr:<6} {results[lr]:.4f}", flush=True)
        best = min(results, key=results.get)
        chosen[variant] = DynamicSettings(variant, best)
        report["tuning"][variant] = {str(k): round(v, 4) for k, v in results.items()} | {"chosen": best}

    pool = load_named(args.unseen, ("train", "val"))
    docs = [cut(d, args.file_bytes) for d in spread_by_package(pool, 1)]  # one file per package
    n = sum(len(d.data) for d in docs)
    workspaces = [folder_workspace(d, pool, WORKSPACE_MAX_BYTES) for d in docs]
    print(f"\nunseen packages: {len(docs)} files, {n:,} bytes, {len({d.package for d in docs})} packages")
    rows = {}
    for label, settings in (("LSTM alone", None), *((f"dynamic {v}", s) for v, s in chosen.items())):
        start = time.perf_counter()
        if settings is None:
            scores = lstm_scores_many(model, [d.data for d in docs])
        else:
            scores = [dynamic_scores(model, d.data, settings) for d in docs]
        seconds = time.perf_counter() - start
        row = {"lstm": lstm_bpc(scores, docs), "seconds": round(seconds, 1), "kb_per_s": round(n / seconds / 1000, 1)}
        for context, workspace in (("document", [b""] * len(docs)), ("workspace", workspaces)):
            total = sum(bits(mixed_target_probability(weights, evidence_for(d.data, s, weights, w)))
                        for d, s, w in zip(docs, scores, workspace))
            row[context] = total / n
        rows[label] = {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
        print(f"  {label:<20} LSTM {row['lstm']:.4f}  + document {row['document']:.4f}  "
              f"+ workspace {row['workspace']:.4f}  ({seconds:.0f} s, {row['kb_per_s']} KB/s)", flush=True)
    report["unseen"] = {"files": len(docs), "bytes": n, "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
