"""Keeps the service's workspaces (SPEC section 8) equal to the editor's workspace folders.

One `FolderSync` per workspace folder runs one background task that does all of that folder's HTTP
work in order: the full upload (on start, after settings change, after the service lost the
workspace) and, debounced, the paths touched since (edited or saved open documents, files changed on
disk). Nothing here is awaited by a completion request. A backend that is down makes the task retry
later with backoff, warning through the same once-per-outage warning as completions.
"""

from __future__ import annotations

import asyncio
import getpass
import hashlib
import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

from codelstm.lsp.backend import BackendUnavailable, HttpBackend, WorkspaceRejected
from codelstm.lsp.files import (LSP_LANGUAGE_ALIASES, MAX_SCANNED_FOLDERS, Collected, FileFilter, collect,
                                enabled_languages, extensions_for, read_source)
from codelstm.lsp.options import Options

log = logging.getLogger("codelstm.lsp")

BATCH_BYTES = 512 << 10  # one PUT body at most: the service refuses bodies over 1 MiB by default
RETRY_FIRST_S = 2.0  # after a failed upload; doubles up to RETRY_MAX_S, or sooner when completions work again
RETRY_MAX_S = 120.0
MAX_WAIT_DEBOUNCES = 5  # someone typing without a pause still gets uploaded every 5 debounce periods


def workspace_id_for(folder: Path) -> str:
    """Stable for a folder, and distinct per user and machine: two people with the same checkout path on
    one service (whose workspaces are per API key, and one key may be shared) do not overwrite each other."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = str(os.getuid()) if hasattr(os, "getuid") else "user"
    who = f"{user}@{socket.gethostname()}\n{folder.absolute().as_posix()}"
    return "lsp-" + hashlib.sha256(who.encode("utf-8")).hexdigest()[:32]


class Reporter(Protocol):
    """What a folder's sync tells the user: through the language server, never more than one warning."""

    def backend_failed(self, message: str) -> None: ...

    def backend_ok(self) -> None: ...

    def show(self, message: str) -> None: ...

    async def progress_begin(self, title: str) -> Any: ...

    def progress_report(self, token: Any, message: str, percentage: int) -> None: ...

    def progress_end(self, token: Any, message: str) -> None: ...


def encode_batches(documents: list[tuple[str, str]], max_bytes: int = BATCH_BYTES) -> Iterator[tuple[list[str], bytes]]:
    """`{"documents": [...]}` bodies of at most `max_bytes` (a single bigger document goes alone)."""
    paths: list[str] = []
    parts: list[bytes] = []
    size = 0
    for path, text in documents:
        # an editor buffer can hold a lone surrogate, which the service refuses with 422: send "?" for it
        text = text.encode("utf-8", "replace").decode("utf-8")
        path = path.encode("utf-8", "replace").decode("utf-8")
        part = json.dumps({"path": path, "text": text}, ensure_ascii=False).encode("utf-8")
        if parts and size + len(part) + 1 > max_bytes - 20:
            yield paths, b'{"documents":[' + b",".join(parts) + b"]}"
            paths, parts, size = [], [], 0
        paths.append(path)
        parts.append(part)
        size += len(part) + 1
    if parts:
        yield paths, b'{"documents":[' + b",".join(parts) + b"]}"


def _size(n: int) -> str:
    return f"{n / (1 << 20):.1f} MB" if n >= 1 << 20 else f"{n / 1024:.0f} KB"


class FolderSync:
    """One workspace folder and the service's workspace that mirrors it."""

    def __init__(self, root: Path, backend: HttpBackend, options: Options, reporter: Reporter,
                 open_documents: Callable[[], list[tuple[str, str | None, str]]]) -> None:
        self.root = root
        self.id = workspace_id_for(root)
        self.backend = backend
        self.options = options
        self.reporter = reporter
        self._open_documents = open_documents  # (path, language id, text) of every open document
        self.filter = FileFilter(root, extensions_for(options.languages), options.workspace_exclude)
        self.uploaded: set[str] = set()  # paths the service holds for us
        self.loaded_at: float | None = None  # monotonic end of the last full upload
        self.need_full = True
        self.full_running = False
        self.capped = False  # at the size cap: new files are not added
        self._told_capped = False  # the user heard why files are missing (once per folder and settings)
        self.stopped: str | None = None  # refused (bad key, invalid): no retries until settings change
        self.pending: set[str] = set()  # paths touched since they were last sent
        self._first_pending_at = 0.0
        self._flush_at = 0.0  # monotonic time the pending paths are due
        self._failures = 0  # in a row; the first of a streak is reported, later ones back off quietly
        self._nudged = False  # the one early retry of a streak was spent
        self._wake = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._task = asyncio.ensure_future(self._run())
        self._wake.set()

    # ---- events from the language server -------------------------------------------------------------

    def touch(self, path: Path, debounce: bool = True) -> None:
        """A file changed (open document edited or saved, file changed on disk, created or deleted)."""
        rel = self.filter.relative(path)
        if rel is None:
            return
        now = time.monotonic()
        if not self.pending:
            self._first_pending_at = now
        self.pending.add(rel)
        delay = self.options.workspace_debounce_ms / 1000 if debounce else 0.0
        self._flush_at = min(now + delay, self._first_pending_at + MAX_WAIT_DEBOUNCES * delay)
        if not self._failures:  # else the retry timer stands: no attempt per keystroke while the backend is down
            self._wake_at(self._flush_at - now)

    def ignores_changed(self) -> None:
        """A .gitignore changed: what belongs in the workspace may be different everywhere."""
        self.filter.forget_gitignores()
        self.resync()

    def resync(self) -> None:
        self.need_full = True
        self._wake.set()

    def lost(self, sent_at: float) -> None:
        """A completion sent at `sent_at` found the workspace missing: upload it again, once per loss
        (answers to requests sent before the last full upload finished, or while one runs, say nothing new)."""
        if self.loaded_at is not None and sent_at >= self.loaded_at and not self.need_full and not self.full_running:
            log.info("workspace %s lost by the service; uploading it again", self.id)
            self.resync()

    def nudge(self) -> None:
        """The backend answers again: retry a failed upload now rather than at the end of its backoff (once:
        if uploads fail while completions work, they go on backing off)."""
        if self._failures and not self._nudged:
            self._nudged = True
            self._wake.set()

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    # ---- the folder's one background task ------------------------------------------------------------

    def _wake_at(self, delay: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(max(0.0, delay), self._wake.set)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self.stopped:
                continue
            try:
                if self.need_full:
                    await self._full_upload()
                elif self.pending and time.monotonic() >= self._flush_at:
                    await self._flush()
                else:
                    continue
                self._failures, self._nudged = 0, False
                self.reporter.backend_ok()
                if self.pending:  # touched while the backend was down, when no debounce timer was set
                    self._wake_at(self._flush_at - time.monotonic())
            except BackendUnavailable as e:
                if not self._failures:
                    self.reporter.backend_failed(str(e))
                self._failures += 1
                self._wake_at(min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** (self._failures - 1)))
            except WorkspaceRejected as e:  # refused as a whole (bad key, invalid id): say so once, stop
                self.stopped = f"codelstm server refused the workspace upload ({e.status}): {e}"
                self.reporter.backend_failed(self.stopped)
            except Exception:  # noqa: BLE001 - a bug here must not end uploads for the session
                log.exception("workspace upload of %s failed", self.root)
                self._failures += 1
                self._wake_at(RETRY_MAX_S)

    def _open_texts(self) -> dict[str, str]:
        """Open documents of this folder that belong in its workspace: their buffers, not the disk."""
        texts = {}
        languages = enabled_languages(self.options.languages)
        for path, language_id, text in self._open_documents():
            rel = self.filter.relative(Path(path))
            if rel is None or self.filter.ignored(rel):
                continue
            if self.filter.is_source(rel) or LSP_LANGUAGE_ALIASES.get(language_id, language_id) in languages:
                texts[rel] = text
        return texts

    async def _put(self, documents: list[tuple[str, str]], skipped: dict[str, int]) -> dict[str, Any] | None:
        """PUT in batches; returns the service's last answer. A batch over the service's body limit is split."""
        answer = None
        for paths, body in encode_batches(documents):
            try:
                answer = await self.backend.put_documents(self.id, body)
            except WorkspaceRejected as e:
                if e.status not in (413, 422) or e.kind == "workspace_full":
                    raise
                if len(paths) == 1:  # one document over the body limit, or refused (a path too long): leave it out
                    skipped["refused"] = skipped.get("refused", 0) + 1
                    continue
                batch = [d for d in documents if d[0] in set(paths)]
                half = len(batch) // 2
                answer = await self._put(batch[:half], skipped) or answer
                answer = await self._put(batch[half:], skipped) or answer
                continue
            self.uploaded.update(paths)
        return answer

    async def _full_upload(self) -> None:
        self.full_running = True
        try:
            await self._upload_folder()
        finally:
            self.full_running = False

    async def _upload_folder(self) -> None:
        self.need_full = False
        self.pending.clear()
        name = self.root.name or str(self.root)
        token = await self.reporter.progress_begin(f"codelstm: uploading workspace {name}")
        message = "stopped"
        try:
            collected: Collected = await asyncio.to_thread(
                collect, self.filter, self.options.workspace_max_file_bytes, self.options.workspace_max_bytes,
                self._open_texts())
            self.reporter.progress_report(token, f"{len(collected.documents)} files, {_size(collected.bytes)}", 0)
            try:
                await self.backend.delete_workspace(self.id)  # what an earlier session left there goes
            except WorkspaceRejected as e:
                if e.status != 404:
                    raise
            self.uploaded = set()
            skipped = dict(collected.skipped)
            server_full = None
            sent = 0
            total = max(1, len(collected.documents))
            for start in range(0, len(collected.documents), 64):
                chunk = collected.documents[start:start + 64]
                try:
                    await self._put(chunk, skipped)
                except WorkspaceRejected as e:
                    if e.kind != "workspace_full":
                        raise
                    server_full = str(e)  # the service's own limit is below workspaceMaxBytes
                    break
                sent += len(chunk)
                self.reporter.progress_report(token, f"{sent}/{len(collected.documents)} files", 100 * sent // total)
            self.loaded_at = time.monotonic()
            self.capped = collected.capped or server_full is not None
            message = self._summary(collected, skipped, server_full)
            if self.capped and not self._told_capped:
                self._told_capped = True
                self.reporter.show(f"codelstm: {name}: {message}")
        except BackendUnavailable:
            self.need_full = True
            message = "server unreachable; will retry"
            raise
        except WorkspaceRejected as e:
            message = f"refused by the server ({e.status} {e.kind})"
            raise
        finally:
            self.reporter.progress_end(token, message)

    def _summary(self, collected: Collected, skipped: dict[str, int], server_full: str | None) -> str:
        """The progress's last word: what was uploaded, and when something stopped it, why and what to do."""
        files = f"{len(self.uploaded)} files"
        if server_full is not None:
            return (f"the server's workspace limit was reached after {files} ({server_full}); add patterns to "
                    f"workspaceExclude, or ask for a higher CODELSTM_WORKSPACE_MAX_MB on the server")
        if "scan_limit" in skipped:
            return (f"stopped looking for files after {MAX_SCANNED_FOLDERS:,} folders (is this a project folder?): "
                    f"uploaded {files}; add patterns to workspaceExclude")
        if collected.capped:
            return (f"workspace over workspaceMaxBytes ({_size(self.options.workspace_max_bytes)}): uploaded {files}, "
                    f"left out {skipped.get('over_total_cap', 0)}; raise workspaceMaxBytes or add patterns to "
                    f"workspaceExclude")
        left_out = sum(n for reason, n in skipped.items() if reason != "ignored_folder")
        return f"{files}, {_size(collected.bytes)}" + (f" ({left_out} left out: ignored, too big or not text)"
                                                       if left_out else "")

    async def _flush(self) -> None:
        touched, self.pending = self.pending, set()
        try:
            puts, deletes = await asyncio.to_thread(self._resolve, touched, self._open_texts())
            if self.capped:
                puts = [(p, t) for p, t in puts if p in self.uploaded]
            skipped: dict[str, int] = {}
            known = len(self.uploaded | {p for p, _ in puts})
            try:
                answer = await self._put(puts, skipped)
            except WorkspaceRejected as e:
                if e.kind != "workspace_full":
                    raise
                self.capped = True
                answer = None
            if answer is not None and answer.get("documents", known) < known:  # made afresh: it had been lost
                self.resync()
                return
            for path in deletes:
                try:
                    await self.backend.delete_document(self.id, path)
                except WorkspaceRejected as e:
                    if e.status != 404:
                        raise
                self.uploaded.discard(path)
                touched.discard(path)
        except BackendUnavailable:
            self.pending |= touched  # sent again with the retry
            raise

    def _resolve(self, touched: set[str], opened: dict[str, str]) -> tuple[list[tuple[str, str]], list[str]]:
        """What to send for each touched path: the open buffer, else the file on disk, else a delete."""
        puts, deletes = [], []
        for rel in sorted(touched):
            text = opened.get(rel)
            if text is None and self.filter.wants(self.root / rel) is not None:
                text, _ = read_source(self.root / rel, self.options.workspace_max_file_bytes)
            if text is not None and len(text.encode("utf-8")) <= self.options.workspace_max_file_bytes:
                puts.append((rel, text))
            elif rel in self.uploaded:
                deletes.append(rel)
        return puts, deletes


class Workspaces:
    """The folders of one editor session, and which folder a document belongs to."""

    def __init__(self, reporter: Reporter, open_documents: Callable[[], list[tuple[str, str | None, str]]]) -> None:
        self.reporter = reporter
        self.open_documents = open_documents
        self.folders: list[FolderSync] = []

    async def reset(self, roots: list[Path], backend: Any, options: Options) -> None:
        """Start over (first start, or the backend or settings that decide what is uploaded changed)."""
        await self.close()
        if not options.workspace or not getattr(backend, "supports_workspaces", False):
            return
        if isinstance(backend, HttpBackend):
            backend.on_workspace_missing = self.lost
        for root in roots:
            self.add(root, backend, options)

    def add(self, root: Path, backend: Any, options: Options) -> None:
        if not options.workspace or not getattr(backend, "supports_workspaces", False) or not root.is_dir() \
                or any(f.root == root for f in self.folders):
            return
        if root.resolve() in (Path.home().resolve(), Path(root.anchor)):  # an editor started in ~ or /
            self.reporter.show(f"codelstm: not uploading {root} as a workspace: it is a home or root folder, not a "
                               f"project (open a project folder for workspace context)")
            return
        self.folders.append(FolderSync(root, backend, options, self.reporter, self.open_documents))

    async def remove(self, root: Path) -> None:
        for folder in [f for f in self.folders if f.root == root]:
            self.folders.remove(folder)
            await folder.close()

    def folder_of(self, path: Path) -> FolderSync | None:
        """The innermost folder holding `path`."""
        best = None
        for folder in self.folders:
            inside = folder.filter.relative(path) is not None
            if inside and (best is None or len(folder.root.parts) > len(best.root.parts)):
                best = folder
        return best

    def touch(self, path: Path, debounce: bool = True) -> None:
        folder = self.folder_of(path)
        if folder is not None:
            if path.name == ".gitignore":
                folder.ignores_changed()
            else:
                folder.touch(path, debounce)

    def lost(self, workspace_id: str, sent_at: float) -> None:
        for folder in self.folders:
            if folder.id == workspace_id:
                folder.lost(sent_at)

    def nudge(self) -> None:
        for folder in self.folders:
            folder.nudge()

    async def close(self) -> None:
        folders, self.folders = self.folders, []
        for folder in folders:
            await folder.close()
