"""The metrics of SPEC section 7 on held-out files: BPC, identifier accuracy, keystrokes saved.

Every file is read from its start with a fresh state. Identifier accuracy and keystrokes saved run a
completion search at many positions, so they are measured on the first `sample_bytes` of each file;
BPC always covers every byte.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from codelstm.model.generate import Search, SearchSpec, is_identifier_byte, prefill, run_searches
from codelstm.model.network import ByteLM
from codelstm.training.evaluate import document_nll_bits

TOKEN_SPEC = SearchSpec(mode="token", n=5, max_chars=48)
LINE_SPEC = SearchSpec(mode="line", n=1, max_chars=64)


@dataclass
class EvalResult:
    files: int
    bytes: int
    bpc: float
    identifiers: int
    top1: float
    top5: float
    typed_chars: int
    keystrokes_saved: float
    acceptances: int

    def to_dict(self) -> dict:
        return asdict(self)


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


@torch.no_grad()
def _states_along(model: ByteLM, data: bytes, positions: list[int]):
    """(state, logits) after reading data[:p] from a fresh start, for each p in ascending positions."""
    out = []
    state, logits = prefill(model, b"")
    read = 0
    for p in positions:
        if p > read:
            state, logits = prefill(model, data[read:p], state)
            read = p
        out.append((state, logits))
    return out


@torch.no_grad()
def identifier_accuracy(model: ByteLM, docs: list[bytes], sample_bytes: int, batch: int = 64) -> tuple[int, int, int]:
    """(identifiers, top-1 hits, top-5 hits) over the first sample_bytes of each doc."""
    total = top1 = top5 = 0
    pending: list[tuple[Search, bytes]] = []

    def flush() -> None:
        nonlocal top1, top5
        run_searches(model, [s for s, _ in pending])
        for search, ident in pending:
            texts = [c.text.encode("utf-8") for c in search.results()]
            top1 += bool(texts) and texts[0] == ident
            top5 += ident in texts
        pending.clear()

    for doc in docs:
        sample = doc[:sample_bytes]
        starts = [(p, ident) for p, ident in identifier_starts(doc) if p < len(sample)]
        states = _states_along(model, doc, [p for p, _ in starts])
        for (p, ident), (state, logits) in zip(starts, states):
            pending.append((Search(TOKEN_SPEC, state, logits, doc[max(0, p - 256):p]), ident))
            total += 1
            if len(pending) >= batch:
                flush()
    if pending:
        flush()
    return total, top1, top5


@torch.no_grad()
def keystrokes_saved(model: ByteLM, docs: list[bytes], sample_bytes: int) -> tuple[int, int, int]:
    """(characters in the files, characters accepted, acceptances) for the simulated typist.

    All files are typed side by side so that their searches share batched steps.
    """
    typists = []
    for doc in docs:
        text = doc[:sample_bytes]
        state, logits = prefill(model, b"")
        typists.append({"text": text, "pos": 0, "state": state, "logits": logits, "accepted": 0, "accepts": 0})
    live = [t for t in typists if t["text"]]
    while live:
        searches = []
        for t in live:
            pos, text = t["pos"], t["text"]
            searches.append(Search(LINE_SPEC, t["state"], t["logits"], text[max(0, pos - 256):pos]))
        run_searches(model, searches)
        for t, search in zip(live, searches):
            pos, text = t["pos"], t["text"]
            results = search.results()
            step = 1
            if results:
                offer = results[0].text.encode("utf-8")
                if offer and text.startswith(offer, pos):
                    step = min(len(offer), len(text) - pos)
                    t["accepted"] += step
                    t["accepts"] += 1
            t["state"], t["logits"] = prefill(model, text[pos:pos + step], t["state"])
            t["pos"] = pos + step
        live = [t for t in live if t["pos"] < len(t["text"])]
    chars = sum(len(t["text"]) for t in typists)
    return chars, sum(t["accepted"] for t in typists), sum(t["accepts"] for t in typists)


def evaluate(model: ByteLM, docs: list[bytes], sample_bytes: int = 2000, max_sample_files: int = 16) -> EvalResult:
    """All metrics; the search-based ones on the first `max_sample_files` files, `sample_bytes` each."""
    bits, n = document_nll_bits(model, docs)
    sample = docs[:max_sample_files]
    idents, hit1, hit5 = identifier_accuracy(model, sample, sample_bytes)
    chars, accepted, accepts = keystrokes_saved(model, sample, sample_bytes)
    return EvalResult(
        files=len(docs), bytes=n, bpc=bits / max(n, 1),
        identifiers=idents, top1=hit1 / max(idents, 1), top5=hit5 / max(idents, 1),
        typed_chars=chars, keystrokes_saved=(accepted - accepts) / max(chars, 1), acceptances=accepts,
    )
