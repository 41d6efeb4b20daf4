"""The pygls language server: thin handlers over `positions`, `backend`, `options` and `workspace`."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path, uri_scheme

from codelstm import __version__
from codelstm.lsp.backend import Backend, BackendUnavailable, HttpBackend
from codelstm.lsp.options import Options, merge_options
from codelstm.lsp.positions import cursor_at
from codelstm.lsp.files import extensions_for
from codelstm.lsp.workspace import Workspaces

log = logging.getLogger("codelstm.lsp")
TOKEN_COMPLETIONS = 5
PROGRESS_CREATE_TIMEOUT_S = 5.0
# settings that change what a workspace holds: a change uploads the folders again
_WORKSPACE_OPTIONS = ("workspace", "languages", "workspace_max_file_bytes", "workspace_max_bytes", "workspace_exclude")


def local_path(uri: str) -> Path | None:
    """The file-system path of a file: URI, or None for other schemes (untitled buffers, remote files)."""
    if uri_scheme(uri) not in ("file", ""):
        return None
    path = to_fs_path(uri)
    return Path(path) if path else None


class CodeLstmServer(LanguageServer):
    def __init__(self, backend_factory=None) -> None:
        super().__init__("codelstm", __version__)
        self.options = Options()
        self.backend_factory = backend_factory or (lambda o: HttpBackend(o.server_url, o.api_key))
        self.backend: Backend | None = None
        self.warned = False  # one warning per outage, not one per keystroke (completions and uploads alike)
        self.in_flight: dict[str, asyncio.Task] = {}  # newest request per document
        self.workspaces = Workspaces(self, self._open_documents)
        self.started = False  # `initialized` came: the client takes requests (progress) from now on
        self.progress_supported = False

    def configure(self, raw: Any) -> None:
        """Apply settings; report bad ones to the user and keep going with the rest."""
        old = self.options
        self.options, problems = merge_options(self.options, raw)
        for problem in problems:
            self.window_show_message(types.ShowMessageParams(types.MessageType.Warning,
                                                             f"codelstm: ignored setting {problem}"))
        new_backend = self.backend is None or (old.server_url, old.api_key) != (self.options.server_url,
                                                                                  self.options.api_key)
        if new_backend:
            self.backend = self.backend_factory(self.options)
            self.warned = False
        if not self.started:
            return
        if new_backend or any(getattr(old, k) != getattr(self.options, k) for k in _WORKSPACE_OPTIONS):
            asyncio.ensure_future(self.start_workspaces())
        else:
            for folder in self.workspaces.folders:
                folder.options = self.options  # the debounce applies from the next edit

    async def start_workspaces(self) -> None:
        """Upload every workspace folder (the root folder when the client names no folders)."""
        uris = [f.uri for f in self.workspace.folders.values()] or \
            ([self.workspace.root_uri] if self.workspace.root_uri else [])
        roots = [p for p in map(local_path, uris) if p is not None]
        await self.workspaces.reset(roots, self.backend, self.options)

    def workspace_id(self, uri: str) -> str | None:
        path = local_path(uri)
        folder = self.workspaces.folder_of(path) if path is not None else None
        return folder.id if folder is not None else None

    def touch(self, uri: str, debounce: bool = True) -> None:
        path = local_path(uri)
        if path is not None:
            self.workspaces.touch(path, debounce)

    def _open_documents(self) -> list[tuple[str, str | None, str]]:
        docs = []
        for doc in list(self.workspace.text_documents.values()):
            path = local_path(doc.uri)
            if path is not None:
                docs.append((str(path), doc.language_id, doc.source))
        return docs

    # ---- Reporter: what uploads tell the user ---------------------------------------------------------

    def backend_failed(self, message: str) -> None:
        if not self.warned:
            self.warned = True
            self.window_show_message(types.ShowMessageParams(types.MessageType.Warning, f"codelstm: {message}"))

    def backend_ok(self) -> None:
        if self.warned:
            self.warned = False
            self.window_log_message(types.LogMessageParams(types.MessageType.Info, "codelstm: backend is back"))
        self.workspaces.nudge()

    def show(self, message: str) -> None:
        self.window_show_message(types.ShowMessageParams(types.MessageType.Info, message))

    async def progress_begin(self, title: str) -> str | None:
        """A work-done progress token when the client shows progress; otherwise the title goes to the log."""
        if not self.progress_supported:
            self.window_log_message(types.LogMessageParams(types.MessageType.Info, title))
            return None
        token = f"codelstm-workspace-{uuid.uuid4().hex[:12]}"
        try:
            await asyncio.wait_for(self.work_done_progress.create_async(token), PROGRESS_CREATE_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - a client that refuses progress still gets its workspace uploaded
            self.window_log_message(types.LogMessageParams(types.MessageType.Info, title))
            return None
        self.work_done_progress.begin(token, types.WorkDoneProgressBegin(title=title, percentage=0, cancellable=False))
        return token

    def progress_report(self, token: str | None, message: str, percentage: int) -> None:
        if token is not None:
            self.work_done_progress.report(token, types.WorkDoneProgressReport(message=message, percentage=percentage))

    def progress_end(self, token: str | None, message: str) -> None:
        if token is not None:
            self.work_done_progress.end(token, types.WorkDoneProgressEnd(message=message))
        else:
            self.window_log_message(types.LogMessageParams(types.MessageType.Info, f"codelstm: workspace {message}"))

    # ---- completions ------------------------------------------------------------------------------------

    def request_body(self, uri: str, fields: dict[str, Any]) -> dict[str, Any]:
        body = {**fields, "document_id": uri}
        workspace_id = self.workspace_id(uri)
        if workspace_id is not None:
            body["workspace_id"] = workspace_id
        return body

    async def ask(self, uri: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        """Query the backend; the newest request for a document supersedes older ones in flight."""
        previous = self.in_flight.get(uri)
        if previous is not None and not previous.done():
            previous.cancel()
        task = asyncio.ensure_future(self.backend.complete(body, self.options.timeout_ms / 1000))
        self.in_flight[uri] = task
        try:
            completions = await task
        except asyncio.CancelledError:
            return []
        except BackendUnavailable as e:
            self.backend_failed(str(e))
            return []
        finally:
            if self.in_flight.get(uri) is task:
                del self.in_flight[uri]
        self.backend_ok()
        return completions


server = CodeLstmServer()


@server.feature(types.INITIALIZE)
def initialize(ls: CodeLstmServer, params: types.InitializeParams) -> None:
    """Read initializationOptions and what the client can show."""
    window = params.capabilities.window
    ls.progress_supported = bool(window and window.work_done_progress)
    ls.configure(params.initialization_options or {})


@server.feature(types.INITIALIZED)
async def initialized(ls: CodeLstmServer, params: types.InitializedParams) -> None:
    """Start uploading the workspace folders; ask the client to report file changes on disk."""
    ls.started = True
    await ls.start_workspaces()
    watched = ls.client_capabilities.workspace and ls.client_capabilities.workspace.did_change_watched_files
    if ls.workspaces.folders and watched and watched.dynamic_registration:
        extensions = ",".join(sorted(e.lstrip(".") for e in extensions_for(ls.options.languages)))
        watchers = [types.FileSystemWatcher(glob_pattern=f"**/*.{{{extensions}}}"),
                    types.FileSystemWatcher(glob_pattern="**/.gitignore")]
        try:
            await ls.client_register_capability_async(types.RegistrationParams(registrations=[types.Registration(
                id="codelstm-watched-files", method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                register_options=types.DidChangeWatchedFilesRegistrationOptions(watchers=watchers))]))
        except Exception as e:  # noqa: BLE001 - without it, saves of open documents still reach the workspace
            log.info("client did not register file watchers: %s", e)


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
def did_change_configuration(ls: CodeLstmServer, params: types.DidChangeConfigurationParams) -> None:
    """Apply changed settings."""
    ls.configure(params.settings)


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: CodeLstmServer, params: types.DidOpenTextDocumentParams) -> None:
    """The buffer may differ from the file on disk: it is what the workspace holds while open."""
    ls.touch(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: CodeLstmServer, params: types.DidChangeTextDocumentParams) -> None:
    """Upload the edited text once the edits settle (workspaceDebounceMs)."""
    ls.touch(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: CodeLstmServer, params: types.DidSaveTextDocumentParams) -> None:
    ls.touch(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: CodeLstmServer, params: types.DidCloseTextDocumentParams) -> None:
    """Unsaved edits are gone with the buffer: the file on disk is what the workspace holds again."""
    ls.touch(params.text_document.uri)


@server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
def did_change_watched_files(ls: CodeLstmServer, params: types.DidChangeWatchedFilesParams) -> None:
    """Files created, changed or deleted on disk (by git, a formatter, another editor)."""
    for change in params.changes:
        ls.touch(change.uri)


@server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
async def did_change_workspace_folders(ls: CodeLstmServer, params: types.DidChangeWorkspaceFoldersParams) -> None:
    for folder in params.event.removed:
        path = local_path(folder.uri)
        if path is not None:
            await ls.workspaces.remove(path)
    for folder in params.event.added:
        path = local_path(folder.uri)
        if path is not None:
            ls.workspaces.add(path, ls.backend, ls.options)


@server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=["."]))
async def completion(ls: CodeLstmServer, params: types.CompletionParams) -> types.CompletionList:
    """Identifier completions (mode=token) replacing the partial word under the cursor."""
    doc = ls.workspace.get_text_document(params.text_document.uri)
    empty = types.CompletionList(is_incomplete=True, items=[])
    if not ls.options.enabled_for(doc.language_id):
        return empty
    cur = cursor_at(doc, params.position)
    results = await ls.ask(doc.uri, ls.request_body(doc.uri, {
        "prefix": cur.prefix, "suffix": cur.suffix, "language": doc.language_id, "mode": "token",
        "n": TOKEN_COMPLETIONS, "max_chars": 48}))
    items = []
    for rank, c in enumerate(results):
        label = cur.word + c["text"]
        items.append(types.CompletionItem(
            label=label, kind=types.CompletionItemKind.Text, sort_text=f"{rank:02d}", filter_text=label,
            detail=f"codelstm  logprob {c['logprob']:.2f}",
            text_edit=types.TextEdit(range=cur.word_range, new_text=label)))
    return types.CompletionList(is_incomplete=True, items=items)


@server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
async def inline_completion(ls: CodeLstmServer, params: types.InlineCompletionParams) -> types.InlineCompletionList:
    """Ghost text (mode=line, or block when configured) inserted at the cursor."""
    doc = ls.workspace.get_text_document(params.text_document.uri)
    if not ls.options.enabled_for(doc.language_id):
        return types.InlineCompletionList(items=[])
    cur = cursor_at(doc, params.position)
    results = await ls.ask(doc.uri, ls.request_body(doc.uri, {
        "prefix": cur.prefix, "suffix": cur.suffix, "language": doc.language_id, "mode": ls.options.mode,
        "n": 3, "max_chars": ls.options.max_chars}))
    at_cursor = types.Range(start=params.position, end=params.position)
    return types.InlineCompletionList(items=[types.InlineCompletionItem(insert_text=c["text"], range=at_cursor)
                                             for c in results])


@server.feature(types.SHUTDOWN)
async def shutdown(ls: CodeLstmServer, *_: Any) -> None:
    """Stop uploading; close the backend's connections."""
    await ls.workspaces.close()
    if ls.backend is not None:
        await ls.backend.close()
