"""What the context models cost a keystroke in the engine (no HTTP): typing into a cached document with the
LSTM alone, with the document's context models, and with a workspace, interleaved keystroke by keystroke.

    python bench/context_step.py [--mode token|line] [--keystrokes 30] [--threads 1]

Prints per setting the median time of a request, the search steps it ran, and the time spent building the
request's context view and mixing (`DocumentMixer.mix`) per request.
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

from common import held_out_texts  # noqa: E402

from codelstm.model import load_checkpoint  # noqa: E402
from codelstm.model.cache import StateCache  # noqa: E402
from codelstm.model.context import ContextIndex  # noqa: E402
from codelstm.model.engine import EngineRequest, InferenceEngine  # noqa: E402
from codelstm.model.generate import Search, SearchSpec  # noqa: E402
from codelstm.model.mixer import DocumentMixer, MixerWeights  # noqa: E402
from codelstm.paths import DEFAULT_MODEL  # noqa: E402


class Timers:
    """Wraps the methods whose time is reported (the engine calls them as usual)."""

    def __init__(self) -> None:
        self.mix = self.view = 0.0
        self.steps = 0
        timers = self
        mix, view, advance = DocumentMixer.mix, InferenceEngine._document_mixer, Search.advance

        def timed_mix(mixer, *args):
            t = time.perf_counter()
            out = mix(mixer, *args)
            timers.mix += time.perf_counter() - t
            return out

        def timed_view(engine, job):
            t = time.perf_counter()
            out = view(engine, job)
            timers.view += time.perf_counter() - t
            return out

        def counted_advance(search, *args, **kwargs):
            timers.steps += 1
            return advance(search, *args, **kwargs)

        DocumentMixer.mix, InferenceEngine._document_mixer, Search.advance = timed_mix, timed_view, counted_advance

    def reset(self) -> tuple[float, float, int]:
        out = (self.mix, self.view, self.steps)
        self.mix = self.view = 0.0
        self.steps = 0
        return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=("token", "line"), default="token")
    p.add_argument("--keystrokes", type=int, default=30)
    p.add_argument("--workspace-kb", type=int, default=512)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    texts = held_out_texts()
    model, _ = load_checkpoint(DEFAULT_MODEL)
    model.eval()
    weights = MixerWeights.load(DEFAULT_MODEL)
    workspace = ContextIndex.build("\0".join(texts[4:]).encode()[:args.workspace_kb << 10], weights.config)
    doc = max(texts[:4], key=len)
    settings = {"LSTM alone": (None, None), "+ document": (weights, None), "+ workspace": (weights, workspace)}
    engines = {name: InferenceEngine(model, StateCache(), mixer=mixer) for name, (mixer, _) in settings.items()}
    timers = Timers()
    pos = len(doc) // 2
    spec = SearchSpec(mode=args.mode)
    for name, engine in engines.items():  # open the document
        engine.run([EngineRequest(doc[:pos].encode(), spec, "doc", settings[name][1])])
    rows = {name: [] for name in engines}
    timers.reset()
    for _ in range(args.keystrokes):
        pos += 2
        for name, engine in engines.items():
            t = time.perf_counter()
            engine.run([EngineRequest(doc[:pos].encode(), spec, "doc", settings[name][1])])
            rows[name].append(((time.perf_counter() - t) * 1000, *timers.reset()))
    print(f"{args.mode} mode, {args.keystrokes} keystrokes into a {len(doc) / 1024:.0f} KB document, "
          f"workspace {args.workspace_kb} KB, {args.threads} thread(s)")
    print("\n| context | p50 ms | steps per request | view ms per request | mix ms per request | mix ms per step |")
    print("|---|---|---|---|---|---|")
    for name, values in rows.items():
        ms = statistics.median(v[0] for v in values)
        mix = sum(v[1] for v in values) * 1000 / len(values)
        view = sum(v[2] for v in values) * 1000 / len(values)
        steps = sum(v[3] for v in values) / len(values)
        print(f"| {name} | {ms:.1f} | {steps:.1f} | {view:.2f} | {mix:.2f} | {mix / max(steps, 1):.2f} |")


if __name__ == "__main__":
    main()
