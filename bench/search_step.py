"""The engine's search steps on the written-out LSTM step vs torch's nn.LSTM, under load, without HTTP.

Usage: python bench/search_step.py [--model default] [--mode token|line] [--clients N] [--rounds R] [--dtype D]
                                  [--context]

N clients type into N held-out documents (2 bytes per keystroke, each with its document_id), all their
requests run together as one engine batch per keystroke round, as the server's batcher would run them.
Engines over the same model take the rounds in turn (rotating which goes first), so a busy machine slows
them alike: one stepping with `LstmStepper` as the server does, one with `nn.LSTM` (oneDNN in bfloat16, ATen
in float32), and in bfloat16 one as the engine was before 2026-11-26's tenth session (`LstmStepper` on
plain weights, `packed=False`, and a keystroke's bytes read by an `nn.LSTM` forward, `read_step` None).
`--context`: one more engine, the server's own (written-out step) with the model's context models mixed into
every search over each document (`mixer.json`), so its round over the LSTM alone's is what context costs.
Prints the median round time, the search steps per round and the rows per step.
HTTP numbers of the same comparison move by a third between runs on the 2-core VM; this one does not.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from codelstm.commands.common import resolve_model_path  # noqa: E402
from codelstm.model import load_checkpoint  # noqa: E402
from codelstm.model.cache import StateCache  # noqa: E402
from codelstm.model.engine import EngineRequest, InferenceEngine  # noqa: E402
from codelstm.model.generate import SearchSpec  # noqa: E402
from codelstm.model.mixer import MixerWeights  # noqa: E402
from codelstm.model.stepper import LstmStepper  # noqa: E402
from common import held_out_texts  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="default")
    p.add_argument("--mode", choices=["token", "line"], default="token")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--dtype", choices=["bfloat16", "float32"], default="bfloat16")
    p.add_argument("--context", action="store_true", help="add an engine with the document's context models")
    args = p.parse_args()
    torch.set_num_threads(1)  # as the server steps on the 2-core VM (CODELSTM_THREADS = cores - 1)
    texts = held_out_texts()[:args.clients]
    path = resolve_model_path(args.model)
    model, _ = load_checkpoint(path)
    model = model.eval().to(getattr(torch, args.dtype))
    onednn = model.dtype == torch.bfloat16
    engines = {"written-out": InferenceEngine(model, StateCache(), step_onednn=onednn),
               "nn.LSTM": InferenceEngine(model, StateCache(), step_onednn=onednn, written_out_step=False)}
    if onednn:
        before = engines["unpacked, forward reads"] = InferenceEngine(model, StateCache(), step_onednn=onednn)
        before.model_step, before.read_step = LstmStepper(model, packed=False), None
    if args.context:
        engines["written-out + document context"] = InferenceEngine(model, StateCache(), step_onednn=onednn,
                                                                    mixer=MixerWeights.load(path))
    spec = SearchSpec(mode=args.mode, n=5 if args.mode == "token" else 3, max_chars=64)
    positions = [min(3000, len(t) // 2) for t in texts]

    def requests() -> list[EngineRequest]:
        return [EngineRequest(t[:pos].encode(), spec, f"doc{i}") for i, (t, pos) in enumerate(zip(texts, positions))]

    for engine in engines.values():
        engine.run(requests())  # open every document (untimed)
    times: dict[str, list[float]] = {name: [] for name in engines}
    counts = {name: [0, 0] for name in engines}  # rows stepped, steps
    for r in range(args.rounds):
        positions = [pos + 2 for pos in positions]
        names = list(engines)
        order = [(name, engines[name]) for name in names[r % len(names):] + names[:r % len(names)]]
        for name, engine in order:
            real = engine.model_step

            def counted(ids, state, real=real, name=name):
                counts[name][0] += ids.numel()
                counts[name][1] += 1
                return real(ids, state)

            engine.model_step = counted
            start = time.perf_counter()
            engine.run(requests())
            times[name].append(time.perf_counter() - start)
            engine.model_step = real
    print(f"{args.mode} mode, {len(texts)} clients, {args.dtype}, {args.rounds} rounds, 1 thread")
    print("| step | round p50 ms | search steps per round | rows per step |")
    print("|---|---|---|---|")
    for name in engines:
        rows, steps = counts[name]
        print(f"| {name} | {statistics.median(times[name]) * 1000:.1f} | {steps / args.rounds:.1f} | {rows / steps:.1f} |")


if __name__ == "__main__":
    main()
