"""Reduced precision: BPC on held-out files and batch-1 step time, float32 vs int8 (dynamic) and bfloat16.

Usage: python bench/quantization.py [--model PATH] [--files N]
"""

from __future__ import annotations

import argparse
import copy
import warnings

import torch

from codelstm.commands.common import resolve_model_path
from codelstm.model import load_checkpoint
from codelstm.model.network import use_onednn
from codelstm.model.quantize import quantize_int8
from codelstm.training.evaluate import bits_per_byte
from common import held_out_texts
from step_time import time_steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--files", type=int, default=20)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    model, _ = load_checkpoint(resolve_model_path(args.model))
    q = quantize_int8(model)
    docs = [t.encode("utf-8")[:20000] for t in held_out_texts(limit=args.files)]
    fp = bits_per_byte(model, docs)
    i8 = bits_per_byte(q, docs)
    print(f"{len(docs)} held-out files, {sum(map(len, docs)):,} bytes")
    print("| weights | BPC | batch-1 step us |\n|---|---|---|")
    with use_onednn(False):  # as the service steps float32
        print(f"| float32 (ATen) | {fp:.4f} | {time_steps(model, 1, 400):.0f} |")
    print(f"| int8 dynamic | {i8:.4f} (+{i8 - fp:.4f}) | {time_steps(q, 1, 400):.0f} |")
    if torch.ops.mkldnn._is_mkldnn_bf16_supported():  # what CODELSTM_DTYPE=auto serves on this CPU
        half = copy.deepcopy(model).to(torch.bfloat16)
        with use_onednn(True):
            bf = bits_per_byte(half, docs)
            print(f"| bfloat16 (oneDNN) | {bf:.4f} ({bf - fp:+.4f}) | {time_steps(half, 1, 400):.0f} |")


if __name__ == "__main__":
    main()
