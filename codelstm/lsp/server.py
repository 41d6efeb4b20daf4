"""The pygls language server: thin handlers over `positions`, `backend` and `options`."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from codelstm import __version__
from codelstm.lsp.backend import Backend, BackendUnavailable, HttpBackend
from codelstm.lsp.options import Options, merge_options
from codelstm.lsp.positions import cursor_at

log = logging.getLogger("codelstm.lsp")
TOKEN_COMPLETIONS = 5


class CodeLstmServer(LanguageServer):
    def __init__(self, backend_factory=None) -> None:
        super().__init__("codelstm", __version__)
        self.options = Options()
        self.backend_factory = backend_factory or (lambda o: HttpBackend(o.server_url, o.api_key))
        self.backend: Backend | None = None
        self.warned = False  # one warning per outage, not one per keystroke
        self.in_flight: dict[str, asyncio.Task] = {}  # newest request per document

    def configure(self, raw: Any) -> None:
        """Apply settings; report bad ones to the user and keep going with the rest."""
        old = self.options
        self.options, problems = merge_options(self.options, raw)
        for problem in problems:
            self.window_show_message(types.ShowMessageParams(types.MessageType.Warning,
                                                             f"codelstm: ignored setting {problem}"))
        if self.backend is None or (old.server_url, old.api_key) != (self.options.server_url, self.options.api_key):
            self.backend = self.backend_factory(self.options)
            self.warned = False

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
            if not self.warned:
                self.warned = True
                self.window_show_message(types.ShowMessageParams(types.MessageType.Warning, f"codelstm: {e}"))
            return []
        finally:
            if self.in_flight.get(uri) is task:
                del self.in_flight[uri]
        if self.warned:
            self.warned = False
            self.window_log_message(types.LogMessageParams(types.MessageType.Info, "codelstm: backend is back"))
        return completions


server = CodeLstmServer()


@server.feature(types.INITIALIZE)
def initialize(ls: CodeLstmServer, params: types.InitializeParams) -> None:
    """Read initializationOptions."""
    ls.configure(params.initialization_options or {})


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
def did_change_configuration(ls: CodeLstmServer, params: types.DidChangeConfigurationParams) -> None:
    """Apply changed settings."""
    ls.configure(params.settings)


@server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=["."]))
async def completion(ls: CodeLstmServer, params: types.CompletionParams) -> types.CompletionList:
    """Identifier completions (mode=token) replacing the partial word under the cursor."""
    doc = ls.workspace.get_text_document(params.text_document.uri)
    empty = types.CompletionList(is_incomplete=True, items=[])
    if not ls.options.enabled_for(doc.language_id):
        return empty
    cur = cursor_at(doc, params.position)
    results = await ls.ask(doc.uri, {"prefix": cur.prefix, "suffix": cur.suffix, "document_id": doc.uri,
                                     "language": doc.language_id, "mode": "token", "n": TOKEN_COMPLETIONS,
                                     "max_chars": 48})
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
    results = await ls.ask(doc.uri, {"prefix": cur.prefix, "suffix": cur.suffix, "document_id": doc.uri,
                                     "language": doc.language_id, "mode": ls.options.mode, "n": 3,
                                     "max_chars": ls.options.max_chars})
    at_cursor = types.Range(start=params.position, end=params.position)
    return types.InlineCompletionList(items=[types.InlineCompletionItem(insert_text=c["text"], range=at_cursor)
                                             for c in results])


@server.feature(types.SHUTDOWN)
async def shutdown(ls: CodeLstmServer, *_: Any) -> None:
    """Close the backend's connections."""
    if ls.backend is not None:
        await ls.backend.close()
