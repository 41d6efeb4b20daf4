"""Features of a text, one value per UTF-8 byte, aligned with the activations of `model.activations.trace`.

Each feature is what a human would label a byte with (the indentation of its line, how deep in brackets it
is, whether it is inside a string); neurons are then ranked by how well they correlate with it. Lexer states
(string, comment, bracket depth) are the state *after* reading the byte, like the activations: an opening
quote is inside the string, a closing quote is not. NaN marks a byte where a feature is undefined (e.g.
distance to the end of an identifier outside identifiers); correlations skip those bytes.

The lexer is deliberately small and language-agnostic within two families: `python` (and other `#`-comment
languages) and `c` (`//` and `/* */` comments, backtick strings). It is a labeller for statistics, not a
parser; a few mislabelled bytes do not move a correlation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np

Syntax = Literal["python", "c"]

HASH_COMMENT_LANGUAGES = {"python", "py", "ruby", "shell", "bash", "sh", "zsh", "yaml", "toml", "r", "perl",
                          "makefile", "dockerfile", "elixir", "julia", "nim", "coffeescript", "powershell"}
TAB_WIDTH = 8  # as Python's tokenizer counts indentation

NUL, LF, TAB, SPACE, BACKSLASH = 0, 0x0A, 0x09, 0x20, 0x5C
OPEN, CLOSE = frozenset(b"([{"), frozenset(b")]}")


def syntax_for(language: str | None) -> Syntax:
    """`python` for None and #-comment languages, `c` for the rest (Java, JS/TS, Go, Rust, C/C++, ...)."""
    if language is None or language.lower() in HASH_COMMENT_LANGUAGES:
        return "python"
    return "c"


@dataclass(frozen=True)
class Lexed:
    """Per-byte lexer states (after the byte) of one text."""

    in_string: np.ndarray  # (T,) bool
    in_comment: np.ndarray  # (T,) bool
    code: np.ndarray  # (T,) bool: the byte itself is code (not part of a string or comment, delimiters included)


def lex(data: bytes, syntax: Syntax = "python") -> Lexed:
    """Strings (with escapes; triple quotes in Python; unterminated one-line strings end at the newline)
    and comments; a NUL (document start) resets everything."""
    n = len(data)
    in_string = np.zeros(n, dtype=bool)
    in_comment = np.zeros(n, dtype=bool)
    code = np.ones(n, dtype=bool)
    quotes = b"\"'" if syntax == "python" else b"\"'`"
    t = 0
    delim: bytes | None = None  # closing delimiter of the string we are in
    comment: bytes | None = None  # b"\n" for a line comment, b"*/" for a block comment
    while t < n:
        b = data[t]
        if b == NUL:
            delim = comment = None
            t += 1
            continue
        if delim is not None:  # inside a string
            code[t] = False
            if b == BACKSLASH and t + 1 < n and data[t + 1] not in (NUL,):
                in_string[t] = in_string[t + 1] = True
                code[t + 1] = False
                t += 2
                continue
            if data.startswith(delim, t):
                end = t + len(delim)
                code[t:end] = False
                in_string[t:end - 1] = True  # still inside until the last delimiter byte is read
                delim = None
                t = end
                continue
            if b == LF and len(delim) == 1 and delim != b"`":  # unterminated one-line string
                delim = None
                t += 1
                continue
            in_string[t] = True
            t += 1
            continue
        if comment is not None:  # inside a comment
            code[t] = False
            if data.startswith(comment, t):
                if comment == b"\n":  # the newline ending a line comment is code, outside the comment
                    code[t] = True
                else:  # "*/": the star is still inside, the slash is out
                    in_comment[t] = True
                    code[t + 1] = False
                t += len(comment)
                comment = None
                continue
            in_comment[t] = True
            t += 1
            continue
        if b in quotes:
            triple = bytes([b]) * 3
            delim = triple if syntax == "python" and data.startswith(triple, t) else bytes([b])
            end = t + len(delim)
            in_string[t:end] = True
            code[t:end] = False
            t = end
            continue
        if syntax == "python" and b == ord("#"):
            comment = b"\n"
        elif syntax == "c" and data.startswith(b"//", t):
            comment = b"\n"
        elif syntax == "c" and data.startswith(b"/*", t):
            comment = b"*/"
            in_comment[t:t + 2] = True
            code[t:t + 2] = False
            t += 2
            continue
        if comment is not None:
            in_comment[t] = True
            code[t] = False
        t += 1
    return Lexed(in_string, in_comment, code)


def _is_continuation(b: int) -> bool:
    return b & 0xC0 == 0x80


def _lines(data: bytes) -> list[tuple[int, int]]:
    """(start, end) byte ranges of lines, each including its newline; NUL also ends a line."""
    spans, start = [], 0
    for t, b in enumerate(data):
        if b in (LF, NUL):
            spans.append((start, t + 1))
            start = t + 1
    if start < len(data):
        spans.append((start, len(data)))
    return spans


def indent_depth(data: bytes, lexed: Lexed) -> np.ndarray:
    """Leading whitespace width of the byte's line, in columns (tab to the next multiple of 8)."""
    out = np.zeros(len(data), dtype=np.float64)
    for start, end in _lines(data):
        width, t = 0, start
        while t < end and data[t] in (SPACE, TAB):
            width = (width // TAB_WIDTH + 1) * TAB_WIDTH if data[t] == TAB else width + 1
            t += 1
        out[start:end] = width
    return out


def bracket_depth(data: bytes, lexed: Lexed) -> np.ndarray:
    """Open (), [] and {} in code after the byte (brackets in strings and comments do not count)."""
    out = np.zeros(len(data), dtype=np.float64)
    depth = 0
    for t, b in enumerate(data):
        if b == NUL:
            depth = 0
        elif lexed.code[t] and b in OPEN:
            depth += 1
        elif lexed.code[t] and b in CLOSE:
            depth = max(depth - 1, 0)
        out[t] = depth
    return out


def in_string(data: bytes, lexed: Lexed) -> np.ndarray:
    """1 inside a string literal (after the byte: the opening quote is in, the closing one out), else 0."""
    return lexed.in_string.astype(np.float64)


def in_comment(data: bytes, lexed: Lexed) -> np.ndarray:
    """1 inside a comment (after the byte: the newline ending a line comment is out), else 0."""
    return lexed.in_comment.astype(np.float64)


def column(data: bytes, lexed: Lexed) -> np.ndarray:
    """0-based column of the byte's character in its line, counted in characters (not bytes)."""
    out = np.zeros(len(data), dtype=np.float64)
    col = 0
    for t, b in enumerate(data):
        if _is_continuation(b):
            out[t] = max(col - 1, 0)
            continue
        out[t] = col
        col = 0 if b in (LF, NUL) else col + 1
    return out


def _is_ident_byte(b: int) -> bool:
    return b == 0x5F or 0x30 <= b <= 0x39 or 0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A or b >= 0x80


def to_identifier_end(data: bytes, lexed: Lexed) -> np.ndarray:
    """Inside an identifier in code: characters left after this one (0 at its last); NaN elsewhere.

    An identifier is a run of letters, digits, `_` and non-ASCII characters that does not start with a digit."""
    out = np.full(len(data), np.nan)
    n, t = len(data), 0
    while t < n:
        if not (lexed.code[t] and _is_ident_byte(data[t])):
            t += 1
            continue
        end = t
        while end < n and lexed.code[end] and _is_ident_byte(data[end]):
            end += 1
        if not 0x30 <= data[t] <= 0x39:  # a number, not an identifier
            chars_after = 0
            for u in range(end - 1, t - 1, -1):
                out[u] = chars_after
                if not _is_continuation(data[u]):
                    chars_after += 1
        t = end
    return out


def _documents(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of the documents in `data`: the text starts one, every NUL starts the next."""
    bounds = [0] + [t for t, b in enumerate(data) if b == NUL] + [len(data)]
    return [(s, e) for s, e in zip(bounds[:-1], bounds[1:]) if e > s]


def a_minus_b(data: bytes, lexed: Lexed) -> np.ndarray:
    """a's read minus b's read since the document began: what a counting LSTM must carry from a^N X to b^N
    (up during the a's, down to 0 over the b's), the quantity of Chen's counting neuron."""
    out = np.zeros(len(data), dtype=np.float64)
    for start, end in _documents(data):
        count = 0
        for t in range(start, end):
            count += (data[t] == ord("a")) - (data[t] == ord("b"))
            out[t] = count
    return out


def a_count(data: bytes, lexed: Lexed) -> np.ndarray:
    """a's read since the document began (it stays at N over the b's, unlike `a_minus_b`)."""
    out = np.zeros(len(data), dtype=np.float64)
    for start, end in _documents(data):
        out[start:end] = np.cumsum(np.frombuffer(data[start:end], dtype=np.uint8) == ord("a"))
    return out


def first_letter(data: bytes, lexed: Lexed) -> np.ndarray:
    """+1 through a document that began with `A`, -1 with `B`, NaN otherwise: the state experiment's memory."""
    out = np.full(len(data), np.nan)
    for start, end in _documents(data):
        first = start + (data[start] == NUL)
        if first < end and data[first] in b"AB":
            out[start:end] = 1.0 if data[first] == ord("A") else -1.0
    return out


def to_copy(data: bytes, lexed: Lexed) -> np.ndarray:
    """Copy experiment: letters before the `X` minus letters written after it (what is left to copy)."""
    out = np.zeros(len(data), dtype=np.float64)
    for start, end in _documents(data):
        left, after_marker = 0, False
        for t in range(start, end):
            b = data[t]
            if b == ord("X"):
                after_marker = True
            elif 0x61 <= b <= 0x7A:
                left += -1 if after_marker else 1
            out[t] = left
    return out


@dataclass(frozen=True)
class Feature:
    name: str
    description: str
    compute: Callable[[bytes, Lexed], np.ndarray]


def _feature(fn: Callable[[bytes, Lexed], np.ndarray]) -> Feature:
    return Feature(fn.__name__, " ".join((fn.__doc__ or "").split()), fn)


CODE_FEATURES = ("indent_depth", "bracket_depth", "in_string", "in_comment", "column", "to_identifier_end")
TASK_FEATURES = ("a_minus_b", "a_count", "first_letter", "to_copy")
FEATURES: dict[str, Feature] = {f.name: f for f in map(_feature, (
    indent_depth, bracket_depth, in_string, in_comment, column, to_identifier_end,
    a_minus_b, a_count, first_letter, to_copy))}


def compute_features(data: bytes, names: list[str] | tuple[str, ...] = CODE_FEATURES,
                     language: str | None = None) -> dict[str, np.ndarray]:
    """The named features of `data`, each a (len(data),) float64 array (NaN: undefined at that byte)."""
    unknown = [n for n in names if n not in FEATURES]
    if unknown:
        raise KeyError(f"unknown features {unknown}; known: {', '.join(FEATURES)}")
    lexed = lex(data, syntax_for(language))
    return {name: FEATURES[name].compute(data, lexed) for name in names}
