"""Which files of a workspace folder the language server uploads, and their text.

Source files of the enabled languages (by extension, the map the corpus builder uses), minus what git
would ignore: each folder's `.gitignore` applies below that folder and `.git/info/exclude` to the whole
tree, matched with `pathspec` (git's own rules, and it works for folders that are not repositories).
Hidden folders and vendored or build folders are skipped, as are symlinks leading out of the folder,
files over the per-file cap and files that are binary or not UTF-8.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from pathspec import GitIgnoreSpec

from codelstm.training.languages import ALL_LANGUAGES, EXTENSIONS

SKIPPED_DIRS = frozenset({
    "node_modules", "bower_components", "vendor", "vendored", "third_party", "site-packages", "venv",
    "build", "dist", "target", "out", "__pycache__",
})
# LSP language ids that the corpus builder's extension map names otherwise
LSP_LANGUAGE_ALIASES = {"javascriptreact": "javascript", "typescriptreact": "typescript", "shellscript": "shell"}
MAX_SCANNED_FOLDERS = 20_000  # a folder that is not a project (a home folder) stops the scan here


def enabled_languages(languages: tuple[str, ...]) -> frozenset[str]:
    """The enabled LSP language ids in the corpus builder's names; no ids means every known source language."""
    return frozenset(LSP_LANGUAGE_ALIASES.get(lang, lang) for lang in languages) if languages else ALL_LANGUAGES


def extensions_for(languages: tuple[str, ...]) -> frozenset[str]:
    """File extensions of the enabled LSP language ids."""
    wanted = enabled_languages(languages)
    return frozenset(ext for ext, lang in EXTENSIONS.items() if lang in wanted)


class FileFilter:
    """Decides, for one workspace folder, which paths belong in its workspace."""

    def __init__(self, root: Path, extensions: frozenset[str], exclude: tuple[str, ...] = ()) -> None:
        self.given = root.absolute()
        self.root = root.resolve()
        self.extensions = extensions
        root_lines = [*exclude, *_lines(self.root / ".git" / "info" / "exclude")]
        self._root_extra = GitIgnoreSpec.from_lines(root_lines) if root_lines else None
        self._specs: dict[Path, GitIgnoreSpec | None] = {}

    def _spec(self, folder: Path) -> GitIgnoreSpec | None:
        if folder not in self._specs:
            lines = _lines(folder / ".gitignore")
            self._specs[folder] = GitIgnoreSpec.from_lines(lines) if lines else None
        return self._specs[folder]

    def forget_gitignores(self) -> None:
        """A .gitignore changed: read them again."""
        self._specs.clear()

    def relative(self, path: Path) -> str | None:
        """The path inside the folder, POSIX style ("src/a.py"), or None when outside it."""
        for base, candidate in ((self.given, path.absolute()), (self.root, path.resolve())):
            try:
                return candidate.relative_to(base).as_posix()
            except ValueError:
                continue
        return None

    def ignored(self, rel: str, is_dir: bool = False) -> bool:
        """Hidden, vendored or build folder, or matched by an ignore file on the way down."""
        parts = PurePosixPath(rel).parts
        folders = parts if is_dir else parts[:-1]
        if any(p.startswith(".") for p in parts) or any(p in SKIPPED_DIRS for p in folders):
            return True
        target = rel + "/" if is_dir else rel
        if self._root_extra is not None and self._root_extra.match_file(target):
            return True
        folder = self.root
        for depth in range(len(parts)):
            spec = self._spec(folder)
            if spec is not None and spec.match_file("/".join(parts[depth:]) + ("/" if is_dir else "")):
                return True
            folder = folder / parts[depth]
        return False

    def is_source(self, rel: str) -> bool:
        return PurePosixPath(rel).suffix.lower() in self.extensions

    def wants(self, path: Path) -> str | None:
        """The relative path when this file belongs in the workspace (not reading it), else None."""
        rel = self.relative(path)
        if rel is None or not self.is_source(rel) or self.ignored(rel) or not _utf8(rel):
            return None
        return rel

    def candidates(self) -> tuple[list[tuple[str, Path, int]], Counter]:
        """(relative path, path, size) of every wanted file, nearest the root first; and skip counts by reason."""
        found: list[tuple[str, Path, int]] = []
        skipped: Counter = Counter()
        for scanned, (folder, dirs, files) in enumerate(os.walk(self.root)):
            if scanned >= MAX_SCANNED_FOLDERS:
                skipped["scan_limit"] += 1
                break
            base = Path(folder)
            rel_base = base.relative_to(self.root).as_posix()
            rel_of = (lambda name: name) if rel_base == "." else (lambda name: f"{rel_base}/{name}")
            kept = []
            for d in sorted(dirs):
                if self.ignored(rel_of(d), is_dir=True):
                    skipped["ignored_folder"] += 1
                else:
                    kept.append(d)
            dirs[:] = kept
            for name in sorted(files):
                rel = rel_of(name)
                if not self.is_source(rel):
                    continue
                if not rel.isprintable() or not _utf8(rel):  # a name the service could not store
                    skipped["bad_name"] += 1
                    continue
                if self.ignored(rel):
                    skipped["ignored"] += 1
                    continue
                path = base / name
                try:
                    if path.is_symlink() and not path.resolve().is_relative_to(self.root):
                        skipped["outside"] += 1
                        continue
                    size = path.stat().st_size
                except OSError:
                    skipped["unreadable"] += 1
                    continue
                found.append((rel, path, size))
        found.sort(key=lambda item: (item[0].count("/"), item[0]))
        return found, skipped


@dataclass
class Collected:
    documents: list[tuple[str, str]] = field(default_factory=list)  # (relative path, text), upload order
    bytes: int = 0  # as the service counts them: UTF-8 bytes plus one separator per document
    skipped: Counter = field(default_factory=Counter)  # reason -> files
    capped: bool = False  # stopped at the total cap with files left over


def read_source(path: Path, max_bytes: int) -> tuple[str | None, str]:
    """The file's text, or None and why not: too big, binary, not UTF-8, unreadable."""
    try:
        if path.stat().st_size > max_bytes:
            return None, "too_large"
        data = path.read_bytes()
    except OSError:
        return None, "unreadable"
    if len(data) > max_bytes:
        return None, "too_large"
    if b"\0" in data[:8192]:
        return None, "binary"
    try:
        return data.decode("utf-8"), ""
    except UnicodeDecodeError:
        return None, "not_utf8"


def collect(file_filter: FileFilter, max_file_bytes: int, max_total_bytes: int,
            overrides: dict[str, str] | None = None) -> Collected:
    """Read the wanted files up to the total cap; `overrides` (open documents) replace what is on disk."""
    overrides = overrides or {}
    candidates, skipped = file_filter.candidates()
    out = Collected(skipped=skipped, capped="scan_limit" in skipped)
    seen = set()
    entries = [(rel, None, len(text.encode("utf-8"))) for rel, text in overrides.items()]  # open ones first
    entries += [c for c in candidates if c[0] not in overrides]
    for rel, path, size in entries:
        if rel in seen:
            continue
        seen.add(rel)
        if out.bytes + size + 1 > max_total_bytes and size <= max_file_bytes:
            out.capped = True
            out.skipped["over_total_cap"] += 1
            continue  # a smaller file further down may still fit
        if path is None:
            text, why = overrides[rel], ""
            if size > max_file_bytes:
                text, why = None, "too_large"
        else:
            text, why = read_source(path, max_file_bytes)
        if text is None:
            out.skipped[why] += 1
            continue
        cost = len(text.encode("utf-8")) + 1
        if out.bytes + cost > max_total_bytes:
            out.capped = True
            out.skipped["over_total_cap"] += 1
            continue  # a smaller file further down may still fit
        out.documents.append((rel, text))
        out.bytes += cost
    return out


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes in a file name come back as lone surrogates
        return False
    return True


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
