"""From an LSP position to the prefix, suffix and the partial identifier it replaces.

LSP positions count UTF-16 code units by default; pygls converts them (for the negotiated encoding)
to a code-point offset into the document, so tabs, CJK text and emoji land where the user sees them.
"""

from __future__ import annotations

from dataclasses import dataclass

from lsprotocol import types
from pygls.workspace import TextDocument


def is_identifier_char(ch: str) -> bool:
    return ch == "_" or ch.isalnum() or ord(ch) >= 0x80 and ch.isidentifier()


@dataclass(frozen=True)
class Cursor:
    prefix: str  # text before the cursor
    suffix: str  # text after the cursor
    word: str  # the partial identifier just before the cursor ("" when none)
    word_range: types.Range  # what a completion replaces: from the word's start to the cursor


def cursor_at(doc: TextDocument, position: types.Position) -> Cursor:
    source = doc.source
    offset = doc.offset_at_position(position)
    start = offset
    while start > 0 and is_identifier_char(source[start - 1]):
        start -= 1
    start_pos = doc.client_position_at_offset(start) if start != offset else position
    return Cursor(source[:offset], source[offset:], source[start:offset], types.Range(start=start_pos, end=position))
