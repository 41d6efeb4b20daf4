"""LSTM step and prefix-reading time under different CPU settings, against the memory-read floor.

Usage: python bench/step_time.py [--model PATH] [--repeat N] [--bpc-bytes N]
Prints one row per (dtype, threads, kernel) setting: microseconds per search step for batch 1, 8 and 128,
milliseconds to read a 257-byte prefix chunk (a NUL and 256 bytes) for 1 and for 8 documents at once, and
microseconds to read a keystroke's 1 or 2 bytes into a document's state (`prefill_many`: a forward on the
kernel the engine reads with for the dtype, or the written-out step byte by byte).
Kernels: nn.LSTM on ATen or on oneDNN, and the written-out step the engine searches with
(codelstm/model/stepper.py; steps only: prefixes are read by nn.LSTM); in bfloat16 also `unpacked`, the
written-out step on plain weights (`F.linear`) instead of oneDNN-packed ones. Then, per kernel and dtype, the bits
per byte of held-out files read one byte per step (teacher-forced, 8 files side by side as 8 rows): what a
kernel's rounding costs in prediction.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/common.py, when run from the repository root

from codelstm.commands.common import resolve_model_path
from codelstm.model import load_checkpoint
from codelstm.model.engine import ONEDNN_FROM
from codelstm.model.generate import prefill_many
from codelstm.model.stepper import LstmStepper
from common import held_out_texts


def time_steps(model, batch: int, repeat: int, step=None) -> float:
    step = step or model.step
    ids = torch.randint(1, 128, (batch,))
    state = model.initial_state(batch)
    with torch.no_grad():
        for _ in range(20):
            _, state = step(ids, state)
        t0 = time.perf_counter()
        for _ in range(repeat):
            _, state = step(ids, state)
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


def time_keystroke(model, length: int, repeat: int, step=None) -> float:
    """Microseconds to read `length` typed bytes into one document's state: one forward, or one `step` per byte
    (what the engine does for reads of up to STEP_READ_BYTES with the written-out step)."""
    typed = [bytes(torch.randint(1, 128, (length,)).tolist())]
    state = [model.initial_state(1)]
    onednn_from = 1 if model.dtype == torch.bfloat16 else ONEDNN_FROM  # as the engine reads

    def read() -> None:
        prefill_many(model, typed, state, onednn_from=onednn_from, step=step, step_up_to=length)

    with torch.no_grad():
        for _ in range(5):
            read()
        t0 = time.perf_counter()
        for _ in range(repeat):
            read()
    return (time.perf_counter() - t0) / repeat * 1e6


def stepped_bits_per_byte(model, step, rows: list[bytes]) -> float:
    """Bits per byte of `rows` (equal lengths) fed one byte per step from a fresh state."""
    ids = torch.tensor([list(row) for row in rows])
    state, nats = model.initial_state(len(rows)), 0.0
    with torch.no_grad():
        for t in range(ids.size(1) - 1):
            logits, state = step(ids[:, t], state)
            nats -= torch.log_softmax(logits.float(), -1).gather(1, ids[:, t + 1:t + 2]).sum().item()
    return nats / (ids.size(0) * (ids.size(1) - 1)) / math.log(2)


def memory_floor_us(model, repeat: int = 200) -> float:
    """Time to read every weight once, as a step must: summing each weight tensor, warm, one thread.

    The 2x384 model's 8 MB of float32 weights stay in the CPU's caches between steps, so this is the
    floor a batch-1 step is compared with (a DRAM-bandwidth estimate would be several times higher)."""
    params = [p.detach() for p in model.parameters()]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    for p in params:
        p.sum()
    t0 = time.perf_counter()
    for _ in range(repeat):
        for p in params:
            p.sum()
    torch.set_num_threads(threads)
    return (time.perf_counter() - t0) / repeat * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--repeat", type=int, default=500)
    parser.add_argument("--bpc-bytes", type=int, default=1500, help="bytes of each of 8 held-out files for the BPC rows")
    args = parser.parse_args()
    model, config = load_checkpoint(resolve_model_path(args.model))
    arch = config["architecture"]
    print(f"model: {arch['num_layers']}x{arch['hidden_size']} {arch['cell']}, {config['parameters']:,} parameters")
    print(f"weight-read floor (every weight summed once, warm, 1 thread): {memory_floor_us(model):.0f} us per step")
    print(f"{'dtype':>8} {'threads':>7} {'kernel':>11} {'step b1 us':>11} {'step b8 us':>11} {'step b128 us':>12} "
          f"{'read 1 ms':>10} {'read 8 ms':>10} {'key 1 us':>9} {'key 2 us':>9}")
    settings = [("float32", kernel, threads) for kernel in ("oneDNN", "ATen", "written-out") for threads in (1, 2)]
    if torch.ops.mkldnn._is_mkldnn_bf16_supported():  # ATen's bfloat16 LSTM is far slower: oneDNN only
        settings += [("bfloat16", kernel, threads) for kernel in ("oneDNN", "written-out", "unpacked")
                     for threads in (1, 2)]
    for dtype, kernel, threads in settings:
        torch.set_num_threads(threads)
        torch.backends.mkldnn.enabled = kernel == "oneDNN"
        m = model.to(getattr(torch, dtype))
        step = LstmStepper(m, packed=kernel != "unpacked") if kernel in ("written-out", "unpacked") else None
        b1 = time_steps(m, 1, args.repeat, step)
        b8 = time_steps(m, 8, args.repeat, step)
        b128 = time_steps(m, 128, max(1, args.repeat // 10), step)
        if step is None:
            r1 = f"{time_prefill(m, 1, max(1, args.repeat // 50)):>10.1f}"
            r8 = f"{time_prefill(m, 8, max(1, args.repeat // 50)):>10.1f}"
        else:
            r1 = r8 = f"{'-':>10}"
        if kernel == "ATen" or (kernel == "oneDNN") == (dtype == "bfloat16") or step is not None:
            keys = [time_keystroke(m, n, args.repeat, step) for n in (1, 2)]  # the engine reads on these
            k1, k2 = (f"{k:>9.0f}" for k in keys)
        else:
            k1 = k2 = f"{'-':>9}"
        print(f"{dtype:>8} {threads:>7} {kernel:>11} {b1:>11.0f} {b8:>11.0f} {b128:>12.0f} {r1} {r8} {k1} {k2}")
    texts = [t.encode()[:args.bpc_bytes] for t in held_out_texts()[:8]]
    rows = [t[:min(map(len, texts))] for t in texts]
    print(f"teacher-forced bits per byte, {len(rows)} held-out files x {len(rows[0]):,} bytes, one byte per step:")
    torch.set_num_threads(1)
    for dtype, kernel, _ in settings[::2]:
        torch.backends.mkldnn.enabled = kernel == "oneDNN"
        m = model.to(getattr(torch, dtype))
        step = LstmStepper(m, packed=kernel != "unpacked") if kernel in ("written-out", "unpacked") else m.step
        print(f"{dtype:>8} {kernel:>11} {stepped_bits_per_byte(m, step, rows):.4f}")

if __name__ == "__main__":
    main()
