"""The names model: which names followed a qualifier (`np.`, `asyncio.`, `from typing import `) in the
training corpus, as one more context model for the mixer.

The context models of context.py know only the text the user already has, so in the first minute of a
file (`import asyncio`, then `loop = asyncio.`) they have nothing but the names typed so far, and echo
them (`asyncio.asyncio`). The LSTM knows the libraries only as well as a few million weights can. This
model is a table counted over a corpus's training files: for each qualifier, the names written right
after it and the byte that followed each (`get_event_loop(`). At a position inside (or at the start of)
a name after a qualifier, it predicts the next byte from the table's names that start with what is typed
so far, weighted by how many files wrote each. docs/context.md has the rules.

A qualifier (`qualifier_keys`) is the identifier before a dot (`np.`), with the identifier before that when
it is an attribute (`np.random.` when the table has it, else `.random.`), or the call it was assigned from a
few lines up (`argparse.ArgumentParser().` for `parser.`), a call before a dot (`Path().`), or a Python import
line so far (`import `, `from `, `from M import `). Keys and names are bytes, as
everything the models see.
"""

from __future__ import annotations

import bisect
import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import safe_open, save_file

from codelstm.model.context import _IDENT, identifier_starts
from codelstm.model.files import atomic_write

NAMES_FILE = "names.safetensors"
NAMES_FORMAT = "codelstm-names/1"
NAME_MAX = 32  # bytes: a name typed longer than this gets no prediction (the identifier model's limit too)
IMPORT_LINE_MAX = 200  # bytes: an import line longer than this before the name is not looked at
CALL_MAX = 200  # bytes: a call's parentheses farther apart than this do not make a qualifier (`f(...).`)
LEAD_BLANKS = 8  # blanks skipped before a chain's first name to find what leads it (`_lead`)
LEAD_WORD_MAX = 12  # bytes: a longer word before a chain does not make a key
# the text before a position that its key can depend on: the name typed, a dot, a call or an import line,
# two more names, the blanks and word before them
ORIGIN_LOOKBACK = 512  # bytes before a chain where its first name's assignment from a call is looked for (`_origin`)
INDENT_MAX = 64  # blanks: an assignment indented deeper is not looked at
NAMES_LOOKBACK = max(max(IMPORT_LINE_MAX, CALL_MAX) + 4 * (NAME_MAX + 1) + 2 * LEAD_BLANKS + LEAD_WORD_MAX + 8,
                     ORIGIN_LOOKBACK + INDENT_MAX + NAME_MAX + 8)
_DOT = 0x2E
_NOT_ASSIGNMENT = frozenset(b"=!<>+-*/%&|^:@")  # before `=`: a comparison or an augmented assignment
_REASSIGNED = frozenset(b"+-*/%&|^@<>:,")  # after a name starting a line: `+=`, `: int =`, `, b =` and the like
_IMPORT_LINE = re.compile(rb"(?:import |from |from [A-Za-z_][\w.]* import )\Z")
_FROM_IMPORT = re.compile(rb"^[ \t]*from ([A-Za-z_][\w.]*) import \Z")
# names the table is counted at: right after a dot, or after an import line's keyword
_NAME = rb"[A-Za-z_\x80-\xff][0-9A-Za-z_\x80-\xff]*"  # an identifier as the models see one (UTF-8 bytes too)
_CALLEE = re.compile(rb"((?:" + _NAME + rb"\.){0,4}" + _NAME + rb")\(")  # a called name, dotted, and its `(`
_NAME_AFTER = re.compile(rb"(?:(?<=\.)|(?<=import )|(?<=from ))" + _NAME)
CACHE_ENTRIES = 20_000  # predictions kept per table (a few hundred bytes each), then the cache starts over
_NOT_CACHED = object()  # a cached None means "no prediction", so a miss needs its own marker
SIZE_EDGES = (1, 16, 256)  # the counts (files writing them) of the names that fit what is typed: a bucket per edge
SHARE_EDGES = (0.0, 0.3, 0.5, 0.7, 0.85, 0.95)  # the share of them that agree on the next byte


def _identifier_start(text: bytes, end: int, limit: int) -> int:
    """Where the identifier run ending at text[end - 1] starts (end when text[end - 1] is not one), looking
    back at most `limit` + 1 bytes (a longer run returns a start more than `limit` before end)."""
    start = end
    while start > 0 and end - start <= limit and _IDENT[text[start - 1]]:
        start -= 1
    return start


def _qualifier(text: bytes, dot: int) -> int:
    """Start of the identifier that ends right before text[dot] (a dot, or what follows an assigned name), or
    -1 when there is none usable: empty, longer than NAME_MAX, or starting with a digit (`1.5`)."""
    start = _identifier_start(text, dot, NAME_MAX)
    if start == dot or dot - start > NAME_MAX or not (text[start] == 0x5F or text[start] > 0x40):
        return -1
    return start


def _matching(text: bytes, at: int, stop: int) -> int:
    """Where the parenthesis matching the one at text[at] is, looking forward from a `(` or back from a `)` up to
    text[stop] (not included; -1: none before it). Brackets inside strings count too: a rule, not a parser, the
    same in the table and at a completion."""
    opening = text[at]
    closing, step = (0x29, 1) if opening == 0x28 else (0x28, -1)
    depth = 0
    for k in range(at, stop, step):
        byte = text[k]
        if byte == opening:
            depth += 1
        elif byte == closing:
            depth -= 1
            if depth == 0:
                return k
    return -1


def _skip_blanks(text: bytes, end: int) -> int:
    """Where the last byte before text[end] that is no blank (space, tab) is, skipping at most LEAD_BLANKS
    blanks (then a blank may be there); -1 when only blanks lead back to the text's start."""
    j = end - 1
    while j >= 0 and end - j <= LEAD_BLANKS and text[j] in (0x20, 0x09):
        j -= 1
    return j


def _lead(text: bytes, x: int) -> bytes:
    """What comes right before a chain's first name at text[x], blanks skipped: a word and a space (`with `,
    `await `; at most LEAD_WORD_MAX bytes), one other byte (`=`, `(`, `@`), `\n` at a line's start; b"" when
    that is too far back or too long a word."""
    j = _skip_blanks(text, x)
    if j < 0:
        return b"\n"  # the text's start is a line's
    if x - j > LEAD_BLANKS:
        return b""
    if not _IDENT[text[j]]:
        return text[j:j + 1]
    word = _identifier_start(text, j + 1, LEAD_WORD_MAX)
    return text[word:j + 1] + b" " if j + 1 - word <= LEAD_WORD_MAX else b""


def _assigned(text: bytes, x: int) -> bytes:
    """The name a chain starting at text[x] is assigned to or passed as (`lock` in `lock = asyncio.`, `dtype` in
    `dtype=np.`); b"" where the chain follows no plain `name =` (`==`, `+=`, `x[0] =`, none)."""
    j = _skip_blanks(text, x)
    if j < 1 or text[j] != 0x3D or text[j - 1] in _NOT_ASSIGNMENT:
        return b""
    k = _skip_blanks(text, j)
    name = _qualifier(text, k + 1) if k >= 0 else -1
    return text[name:k + 1] if name >= 0 else b""


def _blanks_end(text: bytes, at: int) -> int:
    """Where the blanks (spaces, tabs) that start at text[at] end: the first other byte, or len(text)."""
    while at < len(text) and text[at] in (0x20, 0x09):
        at += 1
    return at


def _ends_line(text: bytes, at: int) -> bool:
    """Whether text[at] is the last thing on its line but blanks and a comment."""
    if at < 0:
        return False
    at = _blanks_end(text, at + 1)
    return at == len(text) or text[at] in (0x0A, 0x0D, 0x23)


def _origin(text: bytes, x: int, name: bytes) -> tuple[bytes, ...]:
    """The keys of the call `name` was last assigned from, when that assignment is a line of the last
    ORIGIN_LOOKBACK bytes before text[x] (`parser = argparse.ArgumentParser(...)` gives `argparse.ArgumentParser().`
    then `.ArgumentParser().`; `path = Path(...)` gives `Path().`); () when its last assignment there is no
    call (or unpacks, or is annotated or augmented), or there is none. A variable's first uses after it is made
    are where the text cannot tell yet what it offers, and what a call returns is what the corpus wrote after
    that call's value. Lines that only use the name (`parser.add_argument(...)`, `name[0] = ...`) are passed."""
    lo = max(0, x - ORIGIN_LOOKBACK)
    at = x
    while True:
        at = text.rfind(name, lo, at)
        if at < 0:
            return ()
        end = at + len(name)
        line = at
        while line > lo and at - line < INDENT_MAX and text[line - 1] in (0x20, 0x09):
            line -= 1
        if not (line == 0 or text[line - 1] == 0x0A) or _IDENT[text[end]]:
            continue  # not at a line's start, or a longer name
        j = _blanks_end(text, end)
        if text[j] == 0x3D and text[j + 1] != 0x3D:
            break  # assigned here
        if text[j] in _REASSIGNED:
            return ()  # assigned, but not as `name = call(...)`: what it holds is not known
    match = _CALLEE.match(text, _blanks_end(text, j + 1), x)
    if match is None or not _ends_line(text, _matching(text, match.end() - 1, x)):
        return ()  # not a call, or a call that is only part of the value (`Path(__file__).parent`)
    parts = match.group(1).split(b".")
    if len(parts) == 1:
        return (parts[0] + b"().",)
    return (parts[-2] + b"." + parts[-1] + b"().", b"." + parts[-1] + b"().")


def qualifier_keys(text: bytes, start: int) -> tuple[bytes, ...]:
    """The table keys for a name starting at text[start], most specific first; () when it follows no qualifier.

    After a dot: `X.` when X starts a chain (a module, a variable: `np.`, `asyncio.`), preceded by what comes
    before X on its line when the table has that (`with httpx.`, `await asyncio.`, `@pytest.`, `=np.`,
    `\nplt.` at a line start: `_lead`), itself preceded by the name assigned to or passed as after a plain `=`
    (`parser=argparse.`, `dtype=np.`: `_assigned`); between those, when X was last assigned from a call in the
    lines just before, that call's value (`argparse.ArgumentParser().`, `.ArgumentParser().`: `_origin`); `Y.X.`
    then `.X.` when X is itself an attribute (`np.random.`; `self.requests.` then `.requests.`, apart from the module's
    `requests.`), and `F().` or `.F().` after a call (`Path(__file__).`, `requests.get(url).` as `.get().`).
    After a space: the import line so far (`import `, `from `, `from M import `)."""
    if start >= 2 and text[start - 1] == _DOT and text[start - 2] == 0x29:
        call = _matching(text, start - 2, max(-1, start - 2 - CALL_MAX - 1))  # its `(`, CALL_MAX bytes back at most
        f = _qualifier(text, call) if call > 0 else -1
        if f < 0:
            return ()
        name = text[f:call]
        return (b"." + name + b"().",) if f >= 1 and text[f - 1] == _DOT else (name + b"().",)
    if start >= 1 and text[start - 1] == _DOT:
        x = _qualifier(text, start - 1)
        if x < 0:
            return ()
        inner = text[x:start]
        if x >= 1 and text[x - 1] == _DOT:
            y = _qualifier(text, x - 1)
            return (text[y:start], b"." + inner) if y >= 0 else (b"." + inner,)
        lead = _lead(text, x)
        keys = _origin(text, x, text[x:start - 1]) + ((lead + inner, inner) if lead else (inner,))
        if lead == b"=":
            target = _assigned(text, x)
            if target:
                return (target + b"=" + inner,) + keys
        return keys
    if start >= 5 and text[start - 1] == 0x20:
        newline = text.rfind(b"\n", max(0, start - IMPORT_LINE_MAX), start)
        if newline < 0 and start > IMPORT_LINE_MAX:  # a line this long is no import line
            return ()
        line = text[newline + 1:start].lstrip(b" \t")
        if _IMPORT_LINE.match(line):
            return (line,)
    return ()


def qualifying_name(text: bytes, start: int) -> bytes:
    """The name a qualifier is about, for a name starting at text[start]: the identifier right before the dot
    (`parser` in `parser.pa`), or the module's last part on an import line (`dataclasses` in `from dataclasses
    import da`); b"" after anything else (a call, `import `)."""
    if start >= 1 and text[start - 1] == _DOT:
        x = _qualifier(text, start - 1)
        return text[x:start - 1] if x >= 0 else b""
    line = text[text.rfind(b"\n", max(0, start - IMPORT_LINE_MAX), start) + 1:start]
    module = _FROM_IMPORT.search(line)
    return module.group(1).rsplit(b".", 1)[-1] if module else b""


class NameTable:
    """Per qualifier key: the names (each with the byte after it) written after it, sorted, and how many documents
    wrote each.

    Stored flat, as it is saved: every entry's bytes in one blob (`offsets[j]:offsets[j + 1]` is entry j),
    the entries of a key one sorted run `spans[key]`, so a table of ~200,000 names loads in milliseconds
    and holds a few MB (a Python object per name held ten times that and took seconds to read)."""

    def __init__(self, spans: dict[bytes, tuple[int, int]] | None = None, blob: bytes = b"",
                 offsets: np.ndarray | None = None, counts: np.ndarray | None = None,
                 built_from: dict | None = None) -> None:
        self.spans = spans or {}
        self.blob = blob
        self.offsets = offsets if offsets is not None else np.zeros(1, dtype=np.int64)
        self.counts = counts if counts is not None else np.zeros(0, dtype=np.int64)
        self.built_from = built_from or {}  # provenance: corpus, split, files, bytes
        self._bytes = np.frombuffer(blob, dtype=np.uint8)
        self._cache: dict = {}

    @classmethod
    def from_counts(cls, rows: dict[bytes, list[tuple[bytes, int]]], built_from: dict | None = None) -> "NameTable":
        """A table from {key: [(entry, count), ...]} (any order)."""
        spans, parts, counts = {}, [], []
        for key in sorted(rows):
            kept = sorted(rows[key])
            spans[key] = (len(parts), len(parts) + len(kept))
            parts.extend(e for e, _ in kept)
            counts.extend(n for _, n in kept)
        offsets = np.zeros(len(parts) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in parts], out=offsets[1:])
        return cls(spans, b"".join(parts), offsets, np.array(counts, dtype=np.int64), built_from)

    @classmethod
    def build(cls, documents: Iterable[bytes], min_key_count: int = 16, min_name_count: int = 2,
              names_per_key: int = 256, max_keys: int = 40000) -> "NameTable":
        """Count every (qualifier, name + next byte) of the documents; keep the keys written at least
        `min_key_count` times (the `max_keys` most written), and per key its `names_per_key` most written
        names that occur `min_name_count` times or more, each weighted by the number of documents that write
        it. Every key a name gets is counted: the backing-off `.X.` as well as `Y.X.`.

        Occurrences choose what the table holds, documents weigh it: the table stands for names a file has
        not written yet, so what many files write must outweigh what one test module repeats (pandas'
        parser tests write `parser.read_csv(` 728 times in 31 files; `parser.parse_args(` occurs 91 times,
        in 87 files)."""
        occurrences: dict[bytes, Counter] = defaultdict(Counter)
        documents_writing: dict[bytes, Counter] = defaultdict(Counter)
        for text in documents:
            written: set[tuple[bytes, bytes]] = set()
            for m in _NAME_AFTER.finditer(text):
                end = m.end()
                if end >= len(text) or end - m.start() > NAME_MAX:
                    continue
                entry = text[m.start():end + 1]
                for key in qualifier_keys(text, m.start()):
                    occurrences[key][entry] += 1
                    written.add((key, entry))
            for key, entry in written:
                documents_writing[key][entry] += 1
        totals = sorted(((sum(c.values()), key) for key, c in occurrences.items()), reverse=True)
        rows = {}
        for total, key in totals[:max_keys]:
            if total < min_key_count:
                break
            kept = [(e, documents_writing[key][e]) for e, n in occurrences[key].most_common(names_per_key)
                    if n >= min_name_count]
            if kept:
                rows[key] = kept
        return cls.from_counts(rows)

    def merged(self, other: "NameTable", names_per_key: int = 256) -> "NameTable":
        """Both tables' counts added per (key, entry), each key keeping its `names_per_key` most written entries:
        a model retrained on a team's code keeps what the starting model's table knew and adds the team's."""
        rows: dict[bytes, Counter] = defaultdict(Counter)
        for table in (self, other):
            for key in table.spans:
                rows[key].update(dict(table.entries_of(key)))
        return NameTable.from_counts({key: c.most_common(names_per_key) for key, c in rows.items()},
                                     {"merged": [self.built_from, other.built_from]})

    def __len__(self) -> int:
        return len(self.spans)

    def entry(self, j: int) -> bytes:
        return self.blob[self.offsets[j]:self.offsets[j + 1]]

    def entries_of(self, key: bytes) -> list[tuple[bytes, int]]:
        """The (entry, count) pairs of a key, sorted by entry ([] for a key the table lacks)."""
        lo, hi = self.spans.get(key, (0, 0))
        return [(self.entry(j), int(self.counts[j])) for j in range(lo, hi)]

    def key_at(self, text: bytes, end: int) -> tuple[bytes | None, int]:
        """(the key this table holds for the name being typed at text[:end], where that name starts); None
        when the position is not in a name after a qualifier the table knows."""
        start = _identifier_start(text, end, NAME_MAX)
        if end - start > NAME_MAX:
            return None, start
        for key in qualifier_keys(text, start):
            if key in self.spans:
                return key, start
        return None, start

    def predict(self, key: bytes, typed: bytes) -> tuple[np.ndarray, np.ndarray, int] | None:
        """(next bytes, their probabilities, bucket) from the names of `key` that start with `typed`; None when
        none does. Cached: the same (key, typed) recurs across beams, keystrokes and requests."""
        found = self._cache.get((key, typed), _NOT_CACHED)
        if found is not _NOT_CACHED:
            return found
        first, last = self.spans[key]
        cut = len(typed)
        offsets = self.offsets
        prefix = lambda j: self.blob[offsets[j]:min(offsets[j] + cut, offsets[j + 1])]  # noqa: E731
        lo = bisect.bisect_left(range(first, last), typed, key=prefix) + first
        hi = bisect.bisect_right(range(lo, last), typed, key=prefix) + lo
        result = None
        if hi > lo:  # every entry is longer than the name typed: a name and the byte after it
            following = self._bytes[self.offsets[lo:hi] + cut]
            weight = np.bincount(following, weights=self.counts[lo:hi], minlength=256)
            nonzero = np.flatnonzero(weight)
            total = weight.sum()
            probs = weight[nonzero] / total
            result = (nonzero.astype(np.int64), probs, names_bucket(int(total), float(probs.max())))
        if len(self._cache) > CACHE_ENTRIES:
            self._cache.clear()
        self._cache[(key, typed)] = result
        return result

    def predict_at(self, text: bytes, end: int) -> tuple[np.ndarray, np.ndarray, int] | None:
        """The prediction for the byte at text[end] from text[:end] (None: the model has none there)."""
        key, start = self.key_at(text, end)
        return None if key is None else self.predict(key, text[start:end])

    def save(self, folder: str | Path) -> Path:
        """names.safetensors: the keys' bytes and entry spans, the entries' blob, offsets and counts; the format
        and provenance in its metadata."""
        path = Path(folder) / NAMES_FILE
        keys = sorted(self.spans)
        key_offsets = np.zeros(len(keys) + 1, dtype=np.int64)
        np.cumsum([len(k) for k in keys], out=key_offsets[1:])
        tensors = {
            "key_bytes": np.frombuffer(b"".join(keys) or b"\0", dtype=np.uint8).copy(),
            "key_offsets": key_offsets,
            "key_spans": np.array([self.spans[k] for k in keys], dtype=np.int64).reshape(-1, 2),
            "entry_bytes": np.frombuffer(self.blob or b"\0", dtype=np.uint8).copy(),
            "entry_offsets": self.offsets.astype(np.int32), "entry_counts": self.counts.astype(np.int32),
        }
        metadata = {"format": NAMES_FORMAT, "built_from": json.dumps(self.built_from)}
        atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))
        return path

    @classmethod
    def load(cls, folder: str | Path) -> "NameTable | None":
        """The table beside a checkpoint, or None when it has none."""
        path = Path(folder) / NAMES_FILE
        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="numpy") as f:
                metadata = f.metadata() or {}
                if metadata.get("format") != NAMES_FORMAT:
                    raise ValueError(f"unknown format {metadata.get('format')!r}")
                arrays = {name: f.get_tensor(name) for name in f.keys()}
            key_bytes, key_offsets = arrays["key_bytes"].tobytes(), arrays["key_offsets"]
            spans = {key_bytes[key_offsets[i]:key_offsets[i + 1]]: (int(a), int(b))
                     for i, (a, b) in enumerate(arrays["key_spans"].tolist())}
            offsets, counts = arrays["entry_offsets"].astype(np.int64), arrays["entry_counts"].astype(np.int64)
            blob = arrays["entry_bytes"].tobytes()[:int(offsets[-1])]
            if len(counts) + 1 != len(offsets) or any(not 0 <= a <= b <= len(counts) for a, b in spans.values()):
                raise ValueError("entry spans and offsets disagree")
            return cls(spans, blob, offsets, counts, json.loads(metadata.get("built_from", "{}")))
        except (ValueError, KeyError, TypeError, OSError, SafetensorError) as e:
            raise ValueError(f"{path} is not a usable names table: {e}") from None


def names_bucket(total: int, top_share: float) -> int:
    """The names model's confidence bucket: (how many corpus occurrences fit) x (how many agree on the byte)."""
    size = bisect.bisect_right(SIZE_EDGES, total) - 1
    share = bisect.bisect_right(SHARE_EDGES, top_share) - 1
    return max(size, 0) * len(SHARE_EDGES) + share


def document_names(doc: bytes, table: NameTable) -> tuple[np.ndarray, np.ndarray]:
    """For every position of `doc`: the names model's probability of the actual byte and its bucket (-1: no
    prediction there), reading doc[:i] for position i (bulk form, for evaluation and fitting)."""
    n = len(doc)
    probability = np.zeros(n)
    bucket = np.full(n, -1, dtype=np.int64)
    # only positions whose name so far follows a dot or an import line's space can have a prediction
    starts = identifier_starts(doc)[:n]
    before = np.frombuffer(doc, dtype=np.uint8)[np.maximum(starts - 1, 0)]
    candidates = np.flatnonzero((starts >= 1) & (np.arange(n) - starts <= NAME_MAX) &
                                ((before == _DOT) | (before == 0x20)))
    for i in candidates.tolist():
        found = table.predict_at(doc, i)
        if found is None:
            continue
        following, probs, b = found
        hit = np.flatnonzero(following == doc[i])
        probability[i] = probs[hit[0]] if len(hit) else 0.0
        bucket[i] = b
    return probability, bucket
