"""Does stopping the beam search early change its answer, and which ranking answers best? (issue 12 item 6)

Usage: python bench/search_ranking.py [--model PATH] [--mode token|line] [--length-penalty A,B,...]
                                      [--files N] [--positions P] [FILE ...]

At positions spread through each held-out file (identifier starts for `token`, any byte for `line`), the
same search runs twice: as served (stopping once no live beam can still enter the top n) and exhaustive
(every beam runs until it ends or reaches max_chars: `SearchSpec(exhaustive=True)`). The searches are the
eval's (SPEC section 7): `mode=token, n=5` scored by top-1/top-5 identifier accuracy, `mode=line, n=1`
scored as the simulated typist does (the offer is accepted when the file goes on with it: characters
accepted per position). Prints how often early and exhaustive agree and what each costs in search steps
and beam rows (one beam row = one byte of one beam through the LSTM). `--length-penalty` measures other
exponents of the ranking score (`codelstm.model.generate.LENGTH_PENALTY`) for the chosen mode.

Files: by default bench/common.py's held-out texts; `bench/data/search_ranking_unseen.txt` lists 24 files of
packages the default corpus does not hold, as installed in this project's .venv (numpy 2.4.6, matplotlib
3.11.2, networkx 3.6.1, Pillow 13.0.0, contourpy 1.3.3, pygls 2.1.1):
`python bench/search_ranking.py --files 24 $(cat bench/data/search_ranking_unseen.txt)`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import time
from pathlib import Path

import torch

from common import held_out_texts
from codelstm.commands.common import resolve_model_path
from codelstm.model import generate, load_checkpoint
from codelstm.model.generate import Completion, Search, prefill, step_searches
from codelstm.model.network import ByteLM
from codelstm.training.metrics import LINE_SPEC, TOKEN_SPEC, identifier_starts

BATCH = 48  # searches stepped together (one batched LSTM step per byte)


def spread(items: list, count: int) -> list:
    """`count` items evenly spread from first to last (deterministic)."""
    if len(items) <= count:
        return items
    if count < 2:
        return items[:count]
    return [items[round(i * (len(items) - 1) / (count - 1))] for i in range(count)]


def positions(doc: bytes, mode: str, count: int) -> list[tuple[int, bytes]]:
    """(position, what follows) spread through the whole file: identifier starts and the identifier for
    `token`; for `line`, positions past the first byte and the rest of the file."""
    if mode == "token":
        return spread([(p, ident) for p, ident in identifier_starts(doc) if p > 0], count)
    return [(p, doc[p:]) for p in spread(list(range(1, len(doc))), count)]


@torch.no_grad()
def run_counted(model: ByteLM, searches: list[Search]) -> list[tuple[int, int]]:
    """Run searches to the end in batches; (steps, beam rows) each."""
    cost = {id(s): [0, 0] for s in searches}
    for i in range(0, len(searches), BATCH):
        active = [s for s in searches[i:i + BATCH] if not s.done]
        while active:
            for s in active:
                cost[id(s)][0] += 1
                cost[id(s)][1] += len(s.pending)
            step_searches(model, active)
            active = [s for s in active if not s.done]
    return [tuple(cost[id(s)]) for s in searches]


def quality(mode: str, results: list[Completion], truth: bytes) -> tuple[float, float]:
    """token: (top-1 hit, top-5 hit); line: (characters accepted, accepted or not)."""
    texts = [c.text.encode("utf-8") for c in results]
    if mode == "token":
        return float(texts[:1] == [truth]), float(truth in texts)
    accepted = bool(texts) and bool(texts[0]) and truth.startswith(texts[0])
    return (len(texts[0]) if accepted else 0.0), float(accepted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help="held-out files (default: bench/common.py's held-out texts)")
    parser.add_argument("--model", default=None)
    parser.add_argument("--mode", choices=["token", "line"], default="token")
    parser.add_argument("--length-penalty", default=None, help="comma-separated exponents to measure (default: served)")
    parser.add_argument("--files", dest="limit", type=int, default=20, help="files at most")
    parser.add_argument("--positions", type=int, default=25, help="positions per file")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, _ = load_checkpoint(resolve_model_path(args.model))
    model.eval()
    texts = [Path(f).read_text() for f in args.files] if args.files else held_out_texts()
    docs = [t.encode("utf-8") for t in texts[: args.limit]]
    served = TOKEN_SPEC if args.mode == "token" else LINE_SPEC
    exhaustive = dataclasses.replace(served, exhaustive=True)
    starts = []  # (state, logits, context, truth)
    for doc in docs:
        state, logits, read = None, None, 0
        for p, truth in positions(doc, args.mode, args.positions):
            state, logits = prefill(model, doc[read:p], state)
            read = p
            starts.append((state, logits, doc[max(0, p - 256):p], truth))
    n = len(starts)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, 1 torch thread; model {resolve_model_path(args.model)}")
    print(f"{len(docs)} files, {n} positions; mode={served.mode} n={served.n} width={served.width} "
          f"max_chars={served.max_chars}\n")
    q1, q2 = ("top-1", "top-5") if args.mode == "token" else ("chars accepted / position", "offers accepted")
    print(f"| length penalty | search | {q1} | {q2} | steps / search | beam rows / search | seconds | "
          f"agrees with exhaustive: top-{served.n} list | top-1 |\n|---|---|---|---|---|---|---|---|---|")
    penalties = ([float(a) for a in args.length_penalty.split(",")] if args.length_penalty
                 else [generate.LENGTH_PENALTY[args.mode]])
    for penalty in penalties:
        generate.LENGTH_PENALTY[args.mode] = penalty
        runs = {}
        for name, spec in (("early stop (served)", served), ("exhaustive", exhaustive)):
            searches = [Search(spec, s, l, c) for s, l, c, _ in starts]
            t0 = time.perf_counter()
            cost = run_counted(model, searches)
            runs[name] = (searches, cost, time.perf_counter() - t0)
        early = [s.results() for s in runs["early stop (served)"][0]]
        full = [s.results() for s in runs["exhaustive"][0]]
        same_list = sum([c.text for c in a] == [c.text for c in b] for a, b in zip(early, full))
        same_top1 = sum([c.text for c in a[:1]] == [c.text for c in b[:1]] for a, b in zip(early, full))
        for name, (searches, cost, secs) in runs.items():
            scores = [quality(args.mode, s.results(), truth) for s, (*_, truth) in zip(searches, starts)]
            first = sum(a for a, _ in scores) / n
            second = sum(b for _, b in scores) / n
            agree = f"{same_list / n:.1%} | {same_top1 / n:.1%}" if name != "exhaustive" else "| "
            shown = (f"{first:.1%} | {second:.1%}" if args.mode == "token" else f"{first:.2f} | {second:.1%}")
            print(f"| {penalty} | {name} | {shown} | {sum(c[0] for c in cost) / n:.1f} | "
                  f"{sum(c[1] for c in cost) / n:.1f} | {secs:.1f} | {agree} |", flush=True)


if __name__ == "__main__":
    main()
