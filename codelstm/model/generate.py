"""Completion search over the byte LM: beam search (or sampling) with the stop rules of each mode.

A `Search` never calls the model itself. It exposes the bytes its beams want fed next and takes the
log-probabilities that come back, so one caller can advance many searches with a single batched
LSTM step (`run_searches`), and a server can let searches join and leave between steps. The rules after a
step run for all of them at once too (`advance_searches`), all but each search's own stop rules.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import accumulate
from typing import TYPE_CHECKING, Callable, Literal, Sequence

import numpy as np
import torch

from codelstm.model.config import DOC_SEPARATOR
from codelstm.model.network import ByteLM, State, use_onednn
from codelstm.model.stepper import LstmStepper

if TYPE_CHECKING:
    from codelstm.model.context import ContextIndex
    from codelstm.model.mixer import DocumentMixer, MixerWeights

Mode = Literal["token", "line", "block"]
StepFunction = Callable[[torch.Tensor, State], tuple[torch.Tensor, State]]  # byte ids, state -> logits, state
NEWLINE = 0x0A
END = -1  # pseudo-byte: the completion ends here (identifier end, newline)
# Results rank by score = logprob / min(len, SCORED_LENGTH[mode])**LENGTH_PENALTY[mode]: a larger exponent favours
# longer completions, and makes the search run longer before its top n are settled (`Search._settled` must assume
# a beam may still grow to max_chars, or to the scored length when that is shorter). Measured on held-out files
# with the ranking exact (bench/search_ranking.py; BENCHMARKS.md, "Beam search ranking"): 0.7 ranked longer wrong
# names and lines first. Token: 0.3 is as accurate as raw log-probability and still offers whole names
# (`ArgumentParser`, not `Argument`, which the model expects `(` after); names past 16 bytes score no better,
# which settles the search sooner at the same accuracy. Line: raw log-probability accepts the most characters.
# Block: 0.7 kept (no metric tells block rankings apart yet).
LENGTH_PENALTY: dict[str, float] = {"token": 0.3, "line": 0.0, "block": 0.7}
SCORED_LENGTH: dict[str, int] = {"token": 16, "line": 512, "block": 512}  # bytes; 512 is the API's max_chars


def is_identifier_byte(b: int) -> bool:
    """ASCII letters, digits, underscore, and any non-ASCII byte (UTF-8 identifiers)."""
    return b == 0x5F or 0x30 <= b <= 0x39 or 0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A or b >= 0x80


IDENTIFIER_MASK = torch.tensor([is_identifier_byte(b) for b in range(256)])


@dataclass(frozen=True)
class SearchSpec:
    mode: Mode = "line"
    max_chars: int = 64  # bytes generated at most
    n: int = 3  # distinct completions wanted
    beam_width: int | None = None  # None: max(n, 4)
    stop: tuple[str, ...] = ()
    suffix: str = ""  # text after the cursor; its first line is never re-emitted
    temperature: float | None = None  # None: beam search; a number: sampling
    seed: int | None = None  # sampling seed (reproducible completions)
    exhaustive: bool = False  # run every beam to its end, not stopping once the top n are settled (tests, bench)

    @property
    def width(self) -> int:
        return max(self.beam_width or max(self.n, 4), self.n)


@dataclass
class Completion:
    text: str
    logprob: float
    finish_reason: str  # stop | length | newline | identifier_end
    mode: Mode = field(default="line", repr=False, compare=False)  # the search's: it sets how length scores
    known: bool | None = field(default=None, repr=False, compare=False)  # token mode: `DocumentMixer.knows_name`

    @property
    def score(self) -> float:
        """What results are ranked by within their class (`rank`), and what the search prunes by."""
        return normalised(self.logprob, len(self.text.encode("utf-8")), self.mode)

    @property
    def rank(self) -> tuple[bool, float]:
        """Results are sorted by this: a name that nobody wrote after a qualifier the names table knows
        (`known` False) after every other, then by score."""
        return self.known is not False, self.score


def normalised(logprob: float, length: int, mode: Mode) -> float:
    """The length-normalised score of a `mode` completion of `length` bytes with this log-probability."""
    return logprob / min(max(length, 1), SCORED_LENGTH[mode]) ** LENGTH_PENALTY[mode]


Utf8State = tuple[int, int, int]  # (continuation bytes owed, lowest and highest allowed next byte)
UTF8_START: Utf8State = (0, 0x00, 0xF4)
_FIRST_CONTINUATION = {0xE0: (0xA0, 0xBF), 0xED: (0x80, 0x9F), 0xF0: (0x90, 0xBF), 0xF4: (0x80, 0x8F)}


@lru_cache(maxsize=None)
def _utf8_allowed(state: Utf8State) -> np.ndarray:
    """Bytes that keep the output valid UTF-8 (no overlong forms, surrogates or code points past U+10FFFF)."""
    pending, lo, hi = state
    allowed = np.zeros(256, dtype=bool)
    if pending:
        allowed[lo:hi + 1] = True
    else:
        allowed[0x01:0x80] = True  # NUL is the document separator, never generated
        allowed[0xC2:0xF5] = True
    return allowed


_IDENTIFIER_BYTES = IDENTIFIER_MASK.numpy()


@lru_cache(maxsize=4096)
def _beam_masks(mode: Mode, utf8_states: tuple[Utf8State, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(allowed, terminal, growing) bytes for beams in these UTF-8 states, (k, 256) each.

    The same few combinations (mostly k beams between characters) recur at every step of every search,
    so they are built once: per-step mask construction was a tenth of a batched step's time."""
    allowed = np.stack([_utf8_allowed(state) for state in utf8_states])
    if mode == "token":
        terminal = ~_IDENTIFIER_BYTES & allowed
    else:
        terminal = np.zeros_like(allowed)
        if mode == "line":
            terminal[:, NEWLINE] = True
    for mask in (allowed, terminal):
        mask.flags.writeable = False  # shared by every search that meets these states
    return allowed, terminal, allowed & ~terminal


def _utf8_after(state: Utf8State, b: int) -> Utf8State:
    pending = state[0]
    if pending:
        return (pending - 1, 0x80, 0xBF) if pending > 1 else UTF8_START
    if b < 0x80:
        return UTF8_START
    owed = 1 if b < 0xE0 else 2 if b < 0xF0 else 3
    lo, hi = _FIRST_CONTINUATION.get(b, (0x80, 0xBF))
    return (owed, lo, hi)


@dataclass
class _Beam:
    data: bytes
    logprob: float
    utf8: Utf8State = UTF8_START  # where the current UTF-8 character stands


def _decode_whole_characters(data: bytes) -> str:
    """Decode, dropping only a trailing character cut short by the length limit (never anything else)."""
    for cut in range(min(3, len(data)) + 1):
        try:
            return data[: len(data) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    raise ValueError(f"search produced invalid UTF-8: {data!r}")


def _line_indent(line: bytes) -> int:
    return len(line) - len(line.lstrip(b" \t"))


def _whole_characters(data: bytes) -> bytes:
    """`data` without a trailing incomplete UTF-8 character (a common prefix may end inside one)."""
    for back in range(1, min(4, len(data)) + 1):
        b = data[-back]
        if b < 0x80:
            return data
        if b >= 0xC0:  # the last character's lead byte: keep it only if the character is complete
            need = 2 if b < 0xE0 else 3 if b < 0xF0 else 4
            return data if back >= need else data[:-back]
    return data


@dataclass(frozen=True)
class Progress:
    """What a running search has decided: every result it will return starts with `text`, and at least
    `results` results will exist. Streaming sends `text` to those results before the search ends."""

    text: str
    results: int


class Search:
    """One request's search. Feed `pending` bytes with `state`, then call `advance` with the log-probs."""

    def __init__(self, spec: SearchSpec, state: State, logits: torch.Tensor, context: bytes = b"",
                 mixer: DocumentMixer | None = None) -> None:
        """`state`/`logits` are the model's after reading the prefix (batch 1); `context` is the prefix's tail.
        `mixer`: the document's context models, mixed into every step's distribution (None: the LSTM alone)."""
        self.spec = spec
        self.mixer = mixer
        self.finished: list[Completion] = []  # distinct texts; only those that may still be among the best n
        self._dead_ends: list[bytes] = []  # token mode: generated bytes no known name starts with (`_settled`)
        self.beams = [_Beam(b"", 0.0)]
        self.state: State = state
        self.pending: torch.Tensor | None = None  # (k,) bytes to feed next, or None when done
        self._first_logprobs = torch.log_softmax(logits.float().reshape(1, -1), dim=-1)
        last_line = context.rsplit(b"\n", 1)[-1]
        self.base_indent = _line_indent(last_line) if last_line.strip() else len(last_line)
        stops = [s.encode("utf-8") for s in spec.stop if s]
        first_suffix_line = spec.suffix.split("\n", 1)[0].strip()
        if first_suffix_line and spec.mode != "block":
            stops.append(first_suffix_line.encode("utf-8"))
        self.stops = stops
        self.generator = torch.Generator().manual_seed(spec.seed) if spec.seed is not None else None
        if spec.temperature is not None:
            self.beams = [_Beam(b"", 0.0) for _ in range(spec.n)]
        self.done = False
        k = len(self.beams)
        advance_searches([self], self._first_logprobs.expand(k, -1), tuple(t.expand(-1, k, -1) for t in state))

    # -- rules -------------------------------------------------------------------------------

    def _finish(self, data: bytes, logprob: float, reason: str) -> None:
        """Record a finished completion; a text reached twice (a stop string cut, a dropped partial
        character) keeps its better score, so the ranking never depends on which path got there first."""
        text = _decode_whole_characters(data)
        if not text.strip():
            return
        known = self.mixer.knows_name(data) if self.mixer is not None and self.spec.mode == "token" else None
        done = Completion(text, logprob, reason, self.spec.mode, known)
        for i, c in enumerate(self.finished):
            if c.text == text:
                if done.score > c.score:
                    self.finished[i] = done
                return
        self.finished.append(done)
        if len(self.finished) > 4 * self.spec.n:  # the n-th best rank only rises: the rest can never come back
            self.finished = sorted(self.finished, key=lambda c: c.rank, reverse=True)[: self.spec.n]

    def _ends_block(self, data: bytes) -> bytes | None:
        """For block mode: the completion cut where the block ends (blank line or dedent), else None."""
        if data.endswith(b"\n\n"):
            return data.rstrip(b"\n")
        if b"\n" in data:
            head, last_line = data.rsplit(b"\n", 1)
            if last_line.strip() and _line_indent(last_line) < self.base_indent and not last_line[-1:].isspace():
                return head
        return None

    def _check_stop(self, data: bytes) -> bytes | None:
        for stop in self.stops:
            if data.endswith(stop):
                return data[: -len(stop)]
        return None

    # -- one step ----------------------------------------------------------------------------

    def advance(self, logprobs: torch.Tensor, state: State | None = None) -> None:
        """Take (k, 256) log-probs for the k live beams (and their new state); choose the next bytes."""
        advance_searches([self], logprobs, self.state if state is None else state)

    def _take(self, candidates: list[tuple[float, int, int]]) -> list[int]:
        """The mode's rules on this step's candidates (ends first, then growing beams best first): finish what
        ends, keep the best `width` that grow. Returns the beams the kept ones continue ([]: the search is done;
        the caller gives the kept beams their states and pending bytes)."""
        spec = self.spec
        sampling = spec.temperature is not None
        new_beams: list[_Beam] = []
        parents: list[int] = []
        for score, i, b in candidates:
            if b != END and not sampling and len(new_beams) >= spec.width:
                break
            beam = self.beams[i]
            if b == END:
                self._finish(beam.data, score, "identifier_end" if spec.mode == "token" else "newline")
                continue
            data = beam.data + bytes([b])
            utf8 = _utf8_after(beam.utf8, b)
            if utf8[0] == 0:
                cut = self._check_stop(data)
                if cut is None and spec.mode == "block":
                    cut = self._ends_block(data)
                if cut is not None:
                    self._finish(cut, score, "stop")
                    continue
            if len(data) >= spec.max_chars:
                self._finish(data, score, "length")  # a trailing partial character is dropped on decode
                continue
            new_beams.append(_Beam(data, score, utf8))
            parents.append(i)
        self.beams = new_beams
        enough = not sampling and self._settled()
        if not new_beams or enough:
            self.done, self.pending = True, None
            return []
        return parents

    def _masks(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(allowed, terminal, growing, can_end) for the live beams: (k, 256) x 3, (k,)."""
        allowed, terminal, growing = _beam_masks(self.spec.mode, tuple(b.utf8 for b in self.beams))
        can_end = np.array([bool(b.data) and b.utf8[0] == 0 for b in self.beams])
        return allowed, terminal, growing, can_end

    def _sample(self, logprobs: np.ndarray) -> list[tuple[float, int, int]]:
        """One sampled continuation (or end) per beam."""
        allowed, terminal, _, can_end = self._masks()
        allowed = torch.from_numpy(allowed & (can_end[:, None] | ~terminal))
        logits = torch.from_numpy(logprobs)
        probs = torch.softmax(logits.masked_fill(~allowed, -math.inf) / self.spec.temperature, dim=-1)
        picks = torch.multinomial(probs, 1, generator=self.generator).flatten().tolist()
        return [(beam.logprob + float(logprobs[i, b]), i, END if terminal[i, b] else b)
                for i, (beam, b) in enumerate(zip(self.beams, picks))]

    def _settled(self) -> bool:
        """True once no live beam can still enter the top n by score, so stopping changes no result.

        A beam's descendants finish with a log-probability no higher than its own (log-probs only fall)
        and at most `max_chars` bytes long (stop strings and dropped partial characters only shorten), and
        a negative log-probability scores best over the longest (scored) length. So
        `normalised(logprob, max_chars)` bounds every score a beam can still reach: a looser bound than raw
        log-probability, the rule before, which pruned beams that would have finished as longer,
        better-scored names (`ArgumentParser` pruned after `Argument`, issue 15)."""
        if not self.beams:
            return True
        if self.spec.exhaustive or len(self.finished) < self.spec.n:
            return False
        nth = sorted(self.finished, key=lambda c: c.rank, reverse=True)[self.spec.n - 1]
        if nth.known is False and self._may_become_known():  # it would rank above the n-th, whatever its score
            return False
        return normalised(max(b.logprob for b in self.beams), self.spec.max_chars, self.spec.mode) < nth.score

    def _may_become_known(self) -> bool:
        """Whether a live beam may still finish as a name `Completion.rank` puts first. A beam that cannot is
        remembered: no name that extends its bytes can either, so its descendants cost no second look."""
        for beam in self.beams:
            if any(beam.data.startswith(dead) for dead in self._dead_ends):
                continue
            if self.mixer.may_become_known(beam.data):
                return True
            self._dead_ends.append(beam.data)
        return False

    def _safe(self, beam: _Beam) -> bytes:
        """The part of a live beam that every completion it may still finish as starts with: without an
        incomplete character, a tail that a stop string could still complete (a stop is cut from the text),
        and in block mode a last line that is still only indentation (a dedent or a blank line cuts from
        the line break before it)."""
        data = _whole_characters(beam.data)
        end = len(data)
        for stop in self.stops:
            for k in range(min(len(stop) - 1, len(data)), 0, -1):
                if data.endswith(stop[:k]):
                    end = min(end, len(data) - k)
                    break
        if self.spec.mode == "block" and b"\n" in data:
            head, last_line = data.rsplit(b"\n", 1)
            if not last_line.strip():
                end = min(end, len(head))
        return data[:end]

    def progress(self) -> Progress:
        """The text every result will start with, from the finished candidates that may still be among the
        best n and what each live beam may still become. For sampling with n = 1 that is each byte as it is
        drawn (less a held-back tail); for beam search, the part every live beam agrees on."""
        ranked = sorted(self.finished, key=lambda c: c.rank, reverse=True)[: self.spec.n]
        texts = [c.text.encode("utf-8") for c in ranked] + [self._safe(beam) for beam in self.beams]
        decided = _whole_characters(os.path.commonprefix(texts)) if texts else b""
        # a non-blank decided text is a result in the making: any completion that starts with it is kept
        results = len(ranked) or (1 if decided.strip() and self.beams else 0)
        return Progress(decided.decode("utf-8"), results)

    def results(self) -> list[Completion]:
        """Best first, distinct, at most n."""
        ranked = sorted(self.finished, key=lambda c: c.rank, reverse=True)
        return ranked[: self.spec.n]


def advance_searches(searches: Sequence[Search], logprobs: torch.Tensor, state: State,
                     on_error: Callable[[int, Exception], None] | None = None) -> None:
    """One step for several searches: their live beams are consecutive rows of `logprobs` (rows, 256) and of
    `state`. The context models' mixing and each search's best continuations run once for all rows
    (`_candidates`), each search's rules on its own candidates (`Search._take`), and the kept beams' states are
    gathered in one call. A search's results do not depend on its batch-mates. `on_error(i, e)`: searches[i]
    failed and is left as it was, the others go on (None: the error is raised)."""
    offsets = [0, *accumulate(len(s.beams) for s in searches)]  # searches[i]'s rows: offsets[i]:offsets[i + 1]
    try:
        logprobs_mixed, candidates = _candidates(searches, logprobs.float().cpu().numpy(), offsets)
    except Exception as e:
        if on_error is None:
            raise
        if len(searches) == 1:
            on_error(0, e)
            return
        for i, search in enumerate(searches):  # changed nothing yet: each alone, so only the one at fault fails
            rows = slice(offsets[i], offsets[i + 1])
            advance_searches([search], logprobs[rows], tuple(t[:, rows] for t in state),
                             lambda _, error, i=i: on_error(i, error))
        return
    kept: list[tuple[Search, list[int]]] = []
    for i, (search, options) in enumerate(zip(searches, candidates)):
        try:
            if options is None:  # sampling draws from the search's own generator: not in the shared pass
                options = search._sample(logprobs_mixed[offsets[i]:offsets[i + 1]])
            parents = search._take(options)
        except Exception as e:
            if on_error is None:
                raise
            on_error(i, e)
            continue
        if parents:
            kept.append((search, [offsets[i] + p for p in parents]))
    if not kept:
        return
    index = torch.tensor([p for _, parents in kept for p in parents], dtype=torch.long, device=state[0].device)
    new_state = tuple(t.index_select(1, index) for t in state)
    pending = torch.tensor([beam.data[-1] for search, _ in kept for beam in search.beams], dtype=torch.long)
    row = 0
    for search, parents in kept:
        rows = slice(row, row + len(parents))
        search.state, search.pending = tuple(t[:, rows] for t in new_state), pending[rows]
        row += len(parents)


_MODE_CODES = {"token": 0, "line": 1, "block": 2}


def _rows(offsets: list[int], chosen: list[int]) -> np.ndarray:
    """The row indices of the chosen searches (searches[i]'s rows: offsets[i]:offsets[i + 1])."""
    return np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in chosen])


def _joined(arrays: list[np.ndarray]) -> np.ndarray:
    """The rows of all, one array (no copy for one)."""
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def _candidates(searches: Sequence[Search], logprobs: np.ndarray,
                offsets: list[int]) -> tuple[np.ndarray, list[list[tuple[float, int, int]] | None]]:
    """The log-probabilities with each search's context models mixed in, and per beam search this step's options
    as (score, beam, byte or END): the 'end here' option of every beam, then the best continuations of all its
    beams, best first (None for a sampling search: it draws in `Search._sample`). Changes no search. The bookkeeping runs in numpy over every row at once, and the choice in a compiled pass
    (`search_kernels`): per search, a few dozen array calls on a few beams cost more than their arithmetic.

    Ends never compete with continuations for the `width` places: finishing costs no place, and ranking an end
    (length L) against a continuation (length L + 1) by raw log-probability would drop ends whose
    length-normalised score ranks them among the best. Continuations all have the same length, so keeping the
    best by log-probability keeps the best by score. Ties go to the lower beam, then the lower byte."""
    from codelstm.model.search_kernels import best_continuations

    mixing = [i for i, s in enumerate(searches) if s.mixer is not None]
    if mixing:  # one distribution everywhere: the LSTM's mixed with the context models'
        from codelstm.model.mixer import mix_many

        beams = [(searches[i].mixer, [beam.data for beam in searches[i].beams]) for i in mixing]
        if len(mixing) == len(searches):
            logprobs = mix_many(beams, logprobs).astype(np.float32)
        else:
            rows = _rows(offsets, mixing)
            logprobs = logprobs.copy()  # it may be the caller's tensor's memory
            logprobs[rows] = mix_many(beams, logprobs[rows])
    out: list[list[tuple[float, int, int]] | None] = [None] * len(searches)
    beam_search = [i for i, s in enumerate(searches) if s.spec.temperature is None]
    if not beam_search:
        return logprobs, out
    mixed = logprobs
    if len(beam_search) < len(searches):
        logprobs = logprobs[_rows(offsets, beam_search)]
    masks = [searches[i]._masks() for i in beam_search]
    terminal, growing, can_end = (_joined([m[k] for m in masks]) for k in (1, 2, 3))
    base = np.array([beam.logprob for i in beam_search for beam in searches[i].beams], dtype=np.float32)
    # the log-probability of ending: the logsumexp over the terminal bytes; in line mode the newline's alone
    # (exactly that logsumexp), in block mode none
    modes = np.array([_MODE_CODES[searches[i].spec.mode] for i in beam_search for _ in searches[i].beams])
    end = np.full(len(base), -np.inf, dtype=np.float32)
    line = modes == _MODE_CODES["line"]
    if line.any():
        end[line] = base[line] + logprobs[line, NEWLINE]
    token = modes == _MODE_CODES["token"]
    if token.any():
        token = slice(None) if token.all() else token
        with np.errstate(invalid="ignore", divide="ignore"):  # a beam with no terminal byte: -inf
            ends = np.where(terminal[token], logprobs[token], -np.inf)
            top = ends.max(axis=1)
            end[token] = base[token] + top + np.log(np.exp(ends - np.where(np.isfinite(top), top, 0)[:, None]).sum(axis=1))
    end = np.where(can_end & np.isfinite(end), end, -np.inf).tolist()
    grow = np.where(growing, base[:, None] + logprobs, -np.inf)
    sizes = [offsets[i + 1] - offsets[i] for i in beam_search]
    row_offsets = [0, *accumulate(sizes)]
    wanted = np.array([2 * searches[i].spec.width for i in beam_search], dtype=np.int64)  # spares for stop rules
    scores, indices, found = (a.tolist() for a in best_continuations(grow, np.array(row_offsets, dtype=np.int64),
                                                                     wanted))
    for s, i in enumerate(beam_search):
        first = row_offsets[s]
        options = [(score, j, END) for j, score in enumerate(end[first:first + sizes[s]]) if score > -math.inf]
        options += [(score, idx // 256, idx % 256) for score, idx in zip(scores[s][:found[s]], indices[s][:found[s]])]
        out[i] = options
    return mixed, out


@torch.no_grad()
def prefill(model: ByteLM, text: bytes, state: State | None = None, chunk: int = 4096) -> tuple[State, torch.Tensor]:
    """Read `text` (after a NUL when starting fresh) and return the state and next-byte logits (1, 256)."""
    device = model.device
    data = text if state is not None else bytes([DOC_SEPARATOR]) + text
    if not data:
        raise ValueError("prefill needs at least one byte when continuing from a state")
    ids = torch.frombuffer(bytearray(data), dtype=torch.uint8).long().to(device).view(1, -1)
    logits = None
    for pos in range(0, ids.size(1), chunk):
        out, _, state = model(ids[:, pos:pos + chunk], state)
        logits = out[:, -1]
    return state, logits


@torch.no_grad()
def prefill_many(model: ByteLM, texts: Sequence[bytes], states: Sequence[State | None],
                 onednn_from: int | None = None, step: StepFunction | None = None,
                 step_up_to: int = 0) -> list[tuple[State, torch.Tensor]]:
    """Read several texts at once, each from its own state (None: a fresh document, read after a NUL).

    Texts of equal length share one batched forward, which on a CPU reads a byte for several documents
    at little more than the cost of one. A fresh document starts from the zero state with its NUL first,
    exactly what `prefill` does. Returned states and logits are copies, never views of a batch, so a
    cache that keeps them holds only their own bytes. `onednn_from`: read groups at least this long with
    oneDNN's LSTM kernel, 2-3x faster over a sequence on a CPU but far slower for a few bytes. `step`:
    read groups of at most `step_up_to` bytes (the byte or two a keystroke adds) one `step` per byte: in
    bfloat16 a call of oneDNN's `nn.LSTM` costs most of a millisecond whatever its length, and the written-out
    search step reads one byte in about 0.55x that time and two in 0.9x (bench/step_time.py, `key` columns);
    in float32 it is as fast as ATen's forward, which short reads use.
    """
    device = model.device
    data = [text if state is not None else bytes([DOC_SEPARATOR]) + text for text, state in zip(texts, states)]
    if any(not d for d in data):
        raise ValueError("prefill needs at least one byte when continuing from a state")
    groups: dict[int, list[int]] = {}
    for i, d in enumerate(data):
        groups.setdefault(len(d), []).append(i)
    results: list[tuple[State, torch.Tensor] | None] = [None] * len(data)
    for members in groups.values():
        ids = torch.frombuffer(bytearray(b"".join(data[i] for i in members)), dtype=torch.uint8)
        ids = ids.long().to(device).view(len(members), -1)
        starts = [states[i] or model.initial_state(1, device) for i in members]
        state = tuple(torch.cat([s[k] for s in starts], dim=1) for k in range(len(starts[0])))
        if step is not None and ids.size(1) <= step_up_to:
            for t in range(ids.size(1)):
                last, state = step(ids[:, t], state)
        else:
            with use_onednn(onednn_from is not None and ids.size(1) >= onednn_from):
                logits, _, state = model(ids, state)
            last = logits[:, -1]
        for row, i in enumerate(members):
            results[i] = (tuple(s[:, row:row + 1].clone() for s in state), last[row:row + 1].clone())
    return results


def search_step(model: ByteLM) -> StepFunction:
    """The one-byte step searches run on: the written-out step where the model allows it, as the server's
    engine steps (`stepper.py`), else the model's own. Built from the weights as they are now: make a new
    one after they change (a training run's evaluation makes one per call)."""
    return LstmStepper(model) if LstmStepper.supports(model) else model.step


@torch.no_grad()
def step_searches(model: ByteLM, searches: Sequence[Search], step: StepFunction | None = None,
                  on_error: Callable[[int, Exception], None] | None = None) -> None:
    """One batched LSTM step for every live beam of every given (not done) search (`step`: the step function,
    default the model's own), then the search rules of all of them in one pass (`advance_searches`, where
    `on_error` is explained)."""
    inputs = torch.cat([s.pending for s in searches]).to(model.device)
    n_parts = len(searches[0].state)
    state = tuple(torch.cat([s.state[j] for s in searches], dim=1) for j in range(n_parts))
    logits, new_state = (step or model.step)(inputs, state)
    advance_searches(searches, torch.log_softmax(logits.float(), dim=-1).cpu(), new_state, on_error=on_error)


@torch.no_grad()
def run_searches(model: ByteLM, searches: Sequence[Search], max_batch: int = 256,
                 step: StepFunction | None = None) -> None:
    """Advance every search to the end, all live beams of all searches in one batched step per byte."""
    active = [s for s in searches if not s.done]
    while active:
        step_searches(model, active[: max(1, max_batch)], step)
        active = [s for s in searches if not s.done]


def complete(model: ByteLM, prefix: str, spec: SearchSpec = SearchSpec(), mixer_weights: MixerWeights | None = None,
             workspace: ContextIndex | None = None) -> list[Completion]:
    """One completion request, start to finish (the terminal command and tests use this). With
    `mixer_weights`, the context models over the prefix (and `workspace`) are mixed in with the fitted
    logits, as the server mixes them (no online adaptation: docs/context.md)."""
    data = prefix.encode("utf-8")
    mixer = None
    state, logits = prefill(model, data)
    if mixer_weights is not None:
        from codelstm.model.mixer import DocumentMixer

        mixer = DocumentMixer.for_document(mixer_weights, data, workspace=workspace)
    search = Search(spec, state, logits, data[-256:], mixer)
    run_searches(model, [search], step=search_step(model))
    return search.results()
