"""Does per-document online adaptation of the mixer pay for its cost? BPC with the fitted logits adapted along
each file vs kept fixed, and what the adaptation costs per KB.

    python bench/context_adapt.py [--model default] [--bytes-per-package 8000] [--threads 1]

Serving (`codelstm serve`) mixes with the fixed fitted logits: adapting needs the LSTM's probability of every
prefix byte and a per-byte walk, which a keystroke's request does not otherwise compute (docs/context.md).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from codelstm.commands.common import load_model, resolve_model_path  # noqa: E402
from codelstm.model.mixer import MixerWeights, bits, mixed_target_probability  # noqa: E402
from codelstm.model.scoring import lstm_scores_many  # noqa: E402
from codelstm.training.context_eval import WORKSPACE_MAX_BYTES, evidence_for  # noqa: E402
from codelstm.training.heldout import folder_workspace, load_named, spread_by_package  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="default")
    p.add_argument("--unseen", type=Path, default=ROOT / "data/unseen")
    p.add_argument("--corpus", type=Path, default=ROOT / "data/default-corpus")
    p.add_argument("--bytes-per-package", type=int, default=8000)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model, _ = load_model(args.model)
    weights = MixerWeights.load(resolve_model_path(args.model))
    for label, folder, splits in (("unseen packages", args.unseen, ("train", "val")),
                                  ("same-package val split", args.corpus, ("val",))):
        pool = load_named(folder, splits)
        docs = spread_by_package(pool, args.bytes_per_package)
        t0 = time.perf_counter()
        scores = lstm_scores_many(model, [d.data for d in docs])
        lstm_s = time.perf_counter() - t0
        total = sum(len(d.data) for d in docs)
        bpc = {k: 0.0 for k in ("document fixed", "document adapted", "workspace fixed", "workspace adapted")}
        walk_s = 0.0
        for doc, s in zip(docs, scores):
            for context, workspace in (("document", b""), ("workspace", folder_workspace(doc, pool, WORKSPACE_MAX_BYTES))):
                evidence = evidence_for(doc.data, s, weights, workspace)
                bpc[f"{context} fixed"] += bits(mixed_target_probability(weights, evidence, adapt=False))
                t1 = time.perf_counter()
                bpc[f"{context} adapted"] += bits(mixed_target_probability(weights, evidence, adapt=True))
                walk_s += time.perf_counter() - t1
        print(f"\n{label}: {len(docs)} files, {total:,} bytes")
        for k, v in bpc.items():
            print(f"  BPC {k:<18} {v / total:.4f}")
        print(f"  adaptation walk: {walk_s / (2 * total) * 1e6 * 1024 / 1e3:.1f} ms per KB of prefix "
              f"(LSTM scores of every byte, needed too: {lstm_s / total * 1e6 * 1024 / 1e3:.1f} ms per KB, 16 lanes)")


if __name__ == "__main__":
    main()
