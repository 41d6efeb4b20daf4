"""LSTM step and prefix-reading time under different CPU settings, against the memory-read floor.

Usage: python bench/step_time.py [--model PATH] [--repeat N]
Prints one row per (threads, oneDNN) setting: microseconds per search step for batch 1 and batch 8,
and milliseconds to read a 257-byte prefix chunk (a NUL and 256 bytes) for 1 and for 8 documents at once.
"""

from __future__ import annotations

import argparse
import time

import torch

from codelstm.commands.common import resolve_model_path
from codelstm.model import load_checkpoint


def time_steps(model, batch: int, repeat: int) -> float:
    ids = torch.randint(1, 128, (batch,))
    state = model.initial_state(batch)
    with torch.no_grad():
        for _ in range(20):
            _, state = model.step(ids, state)
        t0 = time.perf_counter()
        for _ in range(repeat):
            _, state = model.step(ids, state)
    return (time.perf_counter() - t0) / repeat * 1e6


def time_prefill(model, batch: int, repeat: int, length: int = 257) -> float:
    ids = torch.randint(1, 128, (batch, length))
    state = model.initial_state(batch)
    with torch.no_grad():
        model(ids, state)
        t0 = time.perf_counter()
        for _ in range(repeat):
            model(ids, state)
    return (time.perf_counter() - t0) / repeat * 1e3


def memory_floor_us(model) -> float:
    """Time to read every weight once at a measured copy bandwidth (a large tensor clone)."""
    nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
    big = torch.empty(64 << 20, dtype=torch.uint8)
    t0 = time.perf_counter()
    for _ in range(5):
        big.clone()
    bandwidth = 5 * 2 * big.numel() / (time.perf_counter() - t0)  # read + write bytes per second
    return nbytes / bandwidth * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--repeat", type=int, default=500)
    args = parser.parse_args()
    model, config = load_checkpoint(resolve_model_path(args.model))
    arch = config["architecture"]
    print(f"model: {arch['num_layers']}x{arch['hidden_size']} {arch['cell']}, {config['parameters']:,} parameters")
    print(f"memory-read floor: {memory_floor_us(model):.0f} us per step")
    print(f"{'threads':>7} {'oneDNN':>6} {'step b1 us':>11} {'step b8 us':>11} {'read 1 ms':>10} {'read 8 ms':>10}")
    for mkldnn in (True, False):
        for threads in (1, 2):
            torch.set_num_threads(threads)
            torch.backends.mkldnn.enabled = mkldnn
            b1 = time_steps(model, 1, args.repeat)
            b8 = time_steps(model, 8, args.repeat)
            r1 = time_prefill(model, 1, max(1, args.repeat // 50))
            r8 = time_prefill(model, 8, max(1, args.repeat // 50))
            print(f"{threads:>7} {str(mkldnn):>6} {b1:>11.0f} {b8:>11.0f} {r1:>10.1f} {r8:>10.1f}")


if __name__ == "__main__":
    main()
