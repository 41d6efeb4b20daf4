"""Training throughput (forward + backward + AdamW on one batch of lanes) under each precision and kernel.

Usage: python bench/train_speed.py [--hidden 384] [--layers 2] [--lanes 48 96] [--threads 2]
Prints chars/s per (precision, kernel, lanes): float32 and bfloat16 autocast, each on oneDNN and on ATen.
Run it on an idle machine: another busy process makes OpenMP threads wait on each other.
"""

from __future__ import annotations

import argparse
import time

import torch

from codelstm.model import ByteLM, ModelConfig
from codelstm.model.network import native_bfloat16, use_onednn


def chars_per_s(config: ModelConfig, lanes: int, seq_len: int, onednn: bool, bfloat16: bool, steps: int) -> float:
    """Median step over `steps` after three warm-up steps, with the hidden state carried as in training."""
    torch.manual_seed(0)
    model = ByteLM(config)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = torch.randint(1, 256, (lanes, seq_len)), torch.randint(1, 256, (lanes, seq_len))
    state, times = None, []
    with use_onednn(onednn):
        for _ in range(steps + 3):
            t0 = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
                _, loss, state = model(x, state, y)
            state = tuple(s.detach() for s in state)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            times.append(time.perf_counter() - t0)
    median = sorted(times[3:])[steps // 2]
    return lanes * seq_len / median


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, default=384)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--embed", type=int, default=64)
    p.add_argument("--lanes", type=int, nargs="+", default=[48, 96])
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=9, help="timed steps per row (ATen bfloat16 takes 10+ s each)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    config = ModelConfig(hidden_size=args.hidden, num_layers=args.layers, embed_dim=args.embed, dropout=0.0)
    print(f"{args.layers} x {args.hidden} LSTM, seq-len {args.seq_len}, {args.threads} threads, "
          f"native bfloat16: {native_bfloat16()}")
    print(f"{'precision':10} {'kernel':7} {'lanes':>5} {'chars/s':>9}")
    for lanes in args.lanes:
        for bfloat16 in (False, True):
            for onednn in (True, False):
                rate = chars_per_s(config, lanes, args.seq_len, onednn, bfloat16,
                                   args.steps if onednn or not bfloat16 else 2)
                print(f"{'bfloat16' if bfloat16 else 'float32':10} {'oneDNN' if onednn else 'ATen':7} {lanes:>5} "
                      f"{rate:>9,.0f}", flush=True)


if __name__ == "__main__":
    main()
