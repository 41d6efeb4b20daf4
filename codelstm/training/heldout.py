"""Held-out files with their names: a corpus folder read back file by file, and each file's workspace.

`corpus build` writes the files of each split back to back (NUL after each) in manifest order, so the
manifest names every document. Names give the folder a file lives in, which is what `--context
workspace` needs: a file's workspace is the other files of its folder, never the file itself.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from codelstm.training.data import open_stream, split_documents


@dataclass(frozen=True)
class NamedDocument:
    name: str  # as in the manifest, e.g. pypi/networkx-3.6.1/networkx/algorithms/cycles.py
    data: bytes

    @property
    def folder(self) -> str:
        return str(PurePosixPath(self.name).parent)

    @property
    def package(self) -> str:
        return "/".join(self.name.split("/")[:2])


def load_named(corpus: str | Path, splits: tuple[str, ...] = ("val",)) -> list[NamedDocument]:
    """The documents of `splits`, each with its manifest name."""
    corpus = Path(corpus)
    manifest = json.loads((corpus / "manifest.json").read_text())
    out = []
    for split in splits:
        names = [f["name"] for f in manifest["files"] if f["split"] == split]
        docs = split_documents(open_stream(corpus / f"{split}.bin"))
        if len(docs) != len(names):
            raise ValueError(f"{corpus}: {split}.bin holds {len(docs)} documents but the manifest names {len(names)}")
        out.extend(NamedDocument(n, d) for n, d in zip(names, docs))
    return out


def spread_by_package(docs: list[NamedDocument], bytes_per_package: int) -> list[NamedDocument]:
    """A deterministic sample: per package, files in hash order of their names until the byte budget is met,
    so every package counts about alike and a huge one (sympy) cannot drown the rest."""
    by_package: dict[str, list[NamedDocument]] = {}
    for d in docs:
        by_package.setdefault(d.package, []).append(d)
    out = []
    for package in sorted(by_package):
        files = sorted(by_package[package], key=lambda d: hashlib.sha256(d.name.encode()).digest())
        used = 0
        for d in files:
            if used >= bytes_per_package:
                break
            out.append(d)
            used += len(d.data)
    return out


def folder_workspace(doc: NamedDocument, pool: list[NamedDocument], max_bytes: int) -> bytes:
    """The other files of `doc`'s folder, NUL-separated, in name order, at most `max_bytes` in all."""
    return join_workspace([d for d in pool if d.folder == doc.folder and d.name != doc.name], max_bytes)


def folder_sources(folder: Path, exclude: Path | None = None, recursive: bool = False) -> list[NamedDocument]:
    """The source files of a folder on disk by the corpus rules (no vendored, generated, binary or huge files),
    for `--context workspace`: the file itself (`exclude`) never counts."""
    from codelstm.training.corpus import ALL_LANGUAGES, classify_content, classify_path, iter_folder

    if recursive:
        candidates = [(c.name, c.path) for c in iter_folder(folder, folder.name)]
    else:
        candidates = [(f"{folder.name}/{p.name}", p) for p in sorted(folder.iterdir()) if p.is_file()]
    out = []
    skip = exclude.resolve() if exclude is not None else None
    for name, path in candidates:
        if skip is not None and path.resolve() == skip:
            continue
        language, _ = classify_path(name, ALL_LANGUAGES)
        if language is None:
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if classify_content(data) is None:
            out.append(NamedDocument(name, data))
    return out


def join_workspace(docs: list[NamedDocument], max_bytes: int) -> bytes:
    """Documents NUL-separated, in name order, skipping any that would take the total past `max_bytes`."""
    out, used = [], 0
    for d in sorted(docs, key=lambda d: d.name):
        if used + len(d.data) + 1 > max_bytes:
            continue
        out.append(d.data)
        used += len(d.data) + 1
    return b"\x00".join(out) + (b"\x00" if out else b"")
