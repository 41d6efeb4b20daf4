"""The metrics of SPEC section 7 on held-out files: BPC, identifier accuracy, keystrokes saved.

Every file is read from its start with a fresh state. BPC covers every byte of every file. Identifier
accuracy and keystrokes saved run a completion search per position, so they sample: a few files
spread through the set, and in each file positions spread evenly through the whole file (never only
its first bytes, which in many projects are the same licence header). The sampling is deterministic,
so two models, or two runs, are measured at the same positions.
"""

from __future__ import annotations

import copy
import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator

import torch

from codelstm.model.generate import (Search, SearchSpec, is_identifier_byte, prefill_many, run_searches, search_step,
                                     step_searches)
from codelstm.model.network import ByteLM, use_onednn
from codelstm.training.evaluate import bits_by_document, resolve_precision, states_at
from codelstm.training.sampling import Sampling, spread, spread_positions, typist_windows

if TYPE_CHECKING:
    from codelstm.training.context_eval import PrefixMixers

TOKEN_SPEC = SearchSpec(mode="token", n=5, max_chars=48)
LINE_SPEC = SearchSpec(mode="line", n=1, max_chars=64)
CONTEXT_TAIL = 256  # bytes of prefix a search's rules look at (indentation), as the engine gives it


@dataclass
class EvalResult:
    files: int
    bytes: int
    bpc: float
    identifiers: int  # identifier starts tried
    top1: float
    top5: float
    typed_chars: int  # characters the typist had to produce, over all windows
    keystrokes_saved: float
    acceptances: int
    sample_files: int = 0  # files the two search metrics sampled
    typist_windows: int = 0
    precision: str = "float32"  # kernels of the BPC read and of the states the searches start from
    seconds: dict[str, float] = field(default_factory=dict)  # wall time of each metric
    identifiers_after_one: int = 0  # identifiers of 2+ characters tried again after their first character
    top1_after_one: float = 0.0
    with_context: "SearchMetrics | None" = None  # the search metrics again with the context models mixed in
    document_bits: list[float] = field(default_factory=list, repr=False)  # -log2 p of each file (breakdowns)

    def to_dict(self) -> dict:
        """The figures (not the per-file bits, which `--breakdown` reports by package)."""
        out = asdict(self)
        del out["document_bits"]
        return out


@dataclass
class SearchMetrics:
    """The search metrics at the same positions, with the context models mixed in as the server does."""

    context: str  # document / workspace
    identifiers: int
    top1: float
    top5: float
    identifiers_after_one: int
    top1_after_one: float
    typed_chars: int
    keystrokes_saved: float
    acceptances: int
    seconds: dict[str, float] = field(default_factory=dict)


def identifier_starts(data: bytes) -> list[tuple[int, bytes]]:
    """(position, whole identifier) wherever an identifier byte follows a non-identifier byte."""
    out = []
    i = 0
    while i < len(data):
        if is_identifier_byte(data[i]) and (i == 0 or not is_identifier_byte(data[i - 1])):
            j = i
            while j < len(data) and is_identifier_byte(data[j]):
                j += 1
            if not (0x30 <= data[i] <= 0x39):  # a number is not an identifier
                out.append((i, data[i:j]))
            i = j
        else:
            i += 1
    return out


class _Progress:
    """One tqdm bar per stage on stderr, or nothing."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    @contextmanager
    def bar(self, total: int, desc: str, unit: str) -> Iterator:
        from tqdm import tqdm

        bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=True, disable=not self.enabled,
                   dynamic_ncols=True, leave=False)
        try:
            yield bar
        finally:
            bar.close()


@dataclass
class IdentifierScores:
    tried: int  # identifier starts tried
    top1: int  # the best completion there is the whole identifier
    top5: int  # the identifier is among the 5 completions
    tried_after_one: int = 0  # identifiers of 2+ characters tried again after their first character
    top1_after_one: int = 0  # ... where the best completion is the rest of the identifier


MixersFor = Callable[[int], "PrefixMixers"]  # doc index -> the mixers for positions of that doc


@torch.no_grad()
def identifier_scores(model: ByteLM, docs: list[bytes], per_file: int, precision: str = "auto",
                      progress: _Progress | None = None, after_one: bool = True,
                      mixers: MixersFor | None = None) -> IdentifierScores:
    """Completion searches at `per_file` identifier starts spread through each doc, and (`after_one`) at the
    same identifiers after their first character has been typed.

    All searches start from states read in one packed pass and run together, one batched step per byte.
    With `mixers`, each search mixes in the context models as the server would at that position; the docs
    then go one at a time, so only one doc's context indexes (and workspace index) are held at once."""
    picked = []
    for doc in docs:
        starts = identifier_starts(doc)
        picked.append([starts[j] for j in spread_positions([p for p, _ in starts], len(doc), per_file)])
    # per doc: (position, what the best completion must be, whether after the first character)
    targets = [[(p, ident, False) for p, ident in ps]
               + ([(p + 1, ident[1:], True) for p, ident in ps if len(ident) > 1] if after_one else [])
               for ps in picked]
    states = states_at(model, docs, [[p for p, _, _ in ts] for ts in targets], precision=precision)
    groups = [list(range(len(docs)))] if mixers is None else [[i] for i in range(len(docs))]
    scores = IdentifierScores(0, 0, 0)
    step = search_step(model)  # the server's step: the same distribution as a completion would see
    with (progress or _Progress(False)).bar(sum(map(len, targets)), "identifiers", "search") as bar, \
            use_onednn(model.dtype == torch.bfloat16):
        for group in groups:
            at = mixers(group[0]).at if mixers is not None else None
            jobs = []
            for i in group:
                doc = docs[i]
                for (p, target, typed), (state, logits) in zip(targets[i], states[i]):
                    mixer = at(p) if at is not None else None
                    jobs.append((Search(TOKEN_SPEC, state, logits, doc[max(0, p - CONTEXT_TAIL):p], mixer),
                                 target, typed))
            for k in range(0, len(jobs), 512):
                batch = jobs[k:k + 512]
                run_searches(model, [s for s, _, _ in batch], step=step)
                for search, target, typed in batch:
                    texts = [c.text.encode("utf-8") for c in search.results()]
                    hit = bool(texts) and texts[0] == target
                    if typed:
                        scores.tried_after_one += 1
                        scores.top1_after_one += hit
                    else:
                        scores.tried += 1
                        scores.top1 += hit
                        scores.top5 += target in texts
                bar.update(len(batch))
    return scores


def identifier_accuracy(model: ByteLM, docs: list[bytes], per_file: int, precision: str = "auto",
                        progress: _Progress | None = None) -> tuple[int, int, int]:
    """(identifiers tried, top-1 hits, top-5 hits) at identifier starts, the LSTM alone."""
    s = identifier_scores(model, docs, per_file, precision, progress, after_one=False)
    return s.tried, s.top1, s.top5


@dataclass
class _Typist:
    doc: bytes
    pos: int
    end: int
    state: tuple
    logits: torch.Tensor
    search: Search | None = None
    accepted: int = 0
    accepts: int = 0
    mixers: "PrefixMixers | None" = None  # the context models at its positions (None: the LSTM alone)

    def offer(self) -> int:
        """Bytes the typist moves on by after its search: the accepted completion, or the one typed byte."""
        results = self.search.results()
        offer = results[0].text.encode("utf-8") if results else b""
        if offer and self.doc.startswith(offer, self.pos):
            step = min(len(offer), self.end - self.pos)
            self.accepted += step
            self.accepts += 1
            return step
        return 1


@torch.no_grad()
def keystrokes_saved(model: ByteLM, docs: list[bytes], typed_bytes: int, windows: int = 4, precision: str = "auto",
                     progress: _Progress | None = None, mixers: MixersFor | None = None) -> tuple[int, int, int, int]:
    """(characters typed, characters accepted, acceptances, windows) for the simulated typist.

    The typist types `windows` stretches spread through each doc, each from the state of the file read up
    to it. Wherever the `mode=line, n=1` completion is what the file continues with (within the stretch),
    it is accepted with one keystroke. All stretches are typed side by side: every batched step advances
    every live search, and a typist whose search ends moves on and starts its next one at once, so a long
    search does not hold the others up. With `mixers`, every search mixes in the context models as the
    server would at its position, one doc at a time (one doc's indexes held at once).
    """
    spans = [typist_windows(doc, typed_bytes, windows) for doc in docs]
    states = states_at(model, docs, [[s for s, _ in sp] for sp in spans], precision=precision)
    per_doc = [[_Typist(doc, start, end, state, logits) for (start, end), (state, logits) in zip(sp, st)]
               for doc, sp, st in zip(docs, spans, states)]
    typists = [t for ts in per_doc for t in ts]
    chars = sum(t.end - t.pos for t in typists)
    groups = [typists] if mixers is None else per_doc
    with (progress or _Progress(False)).bar(chars, "keystrokes", "char") as bar:
        for i, group in enumerate(groups):
            if mixers is not None and group:
                shared = mixers(i)
                for t in group:
                    t.mixers = shared
            _type(model, group, bar)
            for t in group:
                t.mixers = None  # the doc's indexes go once its stretches are typed
    return chars, sum(t.accepted for t in typists), sum(t.accepts for t in typists), len(typists)


def _type(model: ByteLM, typists: list[_Typist], bar) -> None:
    """Type every typist's stretch, all side by side."""
    live = [t for t in typists if t.pos < t.end]
    bfloat16 = model.dtype == torch.bfloat16  # oneDNN for bfloat16 (ATen's is 40x slower); ATen steps float32 best
    step = search_step(model)  # the server's step: the same distribution as a completion would see
    while live:
        for t in live:
            if t.search is None:
                mixer = t.mixers.at(t.pos) if t.mixers is not None else None
                t.search = Search(LINE_SPEC, t.state, t.logits, t.doc[max(0, t.pos - CONTEXT_TAIL):t.pos], mixer)
        stepping = [t.search for t in live if not t.search.done]
        if stepping:
            with use_onednn(bfloat16):
                step_searches(model, stepping, step)
        moving = [(t, t.offer()) for t in live if t.search.done]
        if moving:
            read = prefill_many(model, [t.doc[t.pos:t.pos + n] for t, n in moving],
                                [t.state for t, _ in moving], onednn_from=1 if bfloat16 else 16)
            for (t, n), (state, logits) in zip(moving, read):
                t.state, t.logits, t.pos, t.search = state, logits, t.pos + n, None
            bar.update(sum(n for _, n in moving))
        live = [t for t in live if t.pos < t.end]


def search_model(model: ByteLM, precision: str) -> ByteLM:
    """The model the searches step: in bfloat16 weights where bfloat16 is chosen, as `serve` runs it there."""
    if precision != "bfloat16" or model.dtype == torch.bfloat16:
        return model
    return copy.deepcopy(model).to(torch.bfloat16)


def _search_metrics(searcher: ByteLM, sample: list[bytes], sampling: Sampling, precision: str, bars: _Progress,
                    mixers: MixersFor | None) -> tuple[IdentifierScores, tuple[int, int, int, int], dict[str, float]]:
    seconds = {}
    t0 = time.perf_counter()
    ids = identifier_scores(searcher, sample, sampling.identifiers, precision, bars, mixers=mixers)
    seconds["identifiers"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    typed = keystrokes_saved(searcher, sample, sampling.typed_bytes, sampling.windows, precision, bars, mixers)
    seconds["keystrokes"] = round(time.perf_counter() - t0, 2)
    return ids, typed, seconds


def evaluate(model: ByteLM, docs: list[bytes], sampling: Sampling = Sampling(), precision: str = "auto",
             progress: bool = False, mixers: MixersFor | None = None, context: str = "document") -> EvalResult:
    """All metrics: BPC on every byte, the search metrics on `sampling`'s files and positions; with `mixers`
    (doc index -> `PrefixMixers`), the search metrics again at the same positions with the `context` models."""
    bars = _Progress(progress)
    precision = resolve_precision(precision, model.device)
    seconds = {}
    t0 = time.perf_counter()
    with bars.bar(sum(map(len, docs)), "BPC", "B") as bar:
        document_bits = bits_by_document(model, docs, precision=precision, on_bytes=bar.update)
    bits, n = math.fsum(document_bits), sum(map(len, docs))
    seconds["bpc"] = round(time.perf_counter() - t0, 2)
    chosen = spread(len(docs), sampling.files)
    sample = [docs[i] for i in chosen]
    searcher = search_model(model, precision)
    ids, (chars, accepted, accepts, windows), search_seconds = _search_metrics(searcher, sample, sampling,
                                                                            precision, bars, None)
    with_context = None
    if mixers is not None:
        cids, (cchars, caccepted, caccepts, _), cseconds = _search_metrics(
            searcher, sample, sampling, precision, bars, lambda j: mixers(chosen[j]))
        with_context = SearchMetrics(
            context, cids.tried, cids.top1 / max(cids.tried, 1), cids.top5 / max(cids.tried, 1),
            cids.tried_after_one, cids.top1_after_one / max(cids.tried_after_one, 1),
            cchars, (caccepted - caccepts) / max(cchars, 1), caccepts, cseconds)
    return EvalResult(
        files=len(docs), bytes=n, bpc=bits / max(n, 1),
        identifiers=ids.tried, top1=ids.top1 / max(ids.tried, 1), top5=ids.top5 / max(ids.tried, 1),
        typed_chars=chars, keystrokes_saved=(accepted - accepts) / max(chars, 1), acceptances=accepts,
        sample_files=len(sample), typist_windows=windows, precision=precision,
        seconds=seconds | search_seconds,
        identifiers_after_one=ids.tried_after_one, top1_after_one=ids.top1_after_one / max(ids.tried_after_one, 1),
        with_context=with_context, document_bits=document_bits,
    )
