"""textDocument/completion and inlineCompletion through the real language server and HTTP service."""

from __future__ import annotations

import asyncio

import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.conftest import ROOT, free_port, running_server
from tests.lsp.conftest import LSP_COMMAND, column, open_document

SOURCE = "# module 7\n\ndef function_2(value):\n    return value + 2\n\ndef func"


def completion(client, uri, line, character):
    return client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=character)))


@pytest.mark.asyncio
async def test_identifier_completion_replaces_the_partial_word(client: LanguageClient):
    uri = "file:///work/a.py"
    open_document(client, uri, SOURCE)
    result = await completion(client, uri, 5, 8)
    assert result.items, "no completion items"
    first = result.items[0]
    assert first.label.startswith("function") and first.filter_text == first.label
    assert first.text_edit.range == types.Range(start=types.Position(5, 4), end=types.Position(5, 8))
    assert first.text_edit.new_text == first.label
    assert [i.sort_text for i in result.items] == sorted(i.sort_text for i in result.items)
    assert "logprob" in first.detail


@pytest.mark.asyncio
async def test_inline_completion_after_incremental_edits(client: LanguageClient):
    uri = "file:///work/b.py"
    open_document(client, uri, "# module 3\n\ndef function_4(value):\n    ret")
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(3, 7), end=types.Position(3, 7)), text="urn ")]))
    result = await client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(3, 11),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
    assert result.items and result.items[0].insert_text.startswith("value")
    assert result.items[0].range == types.Range(start=types.Position(3, 11), end=types.Position(3, 11))


NON_ASCII_LINE = "\tx = '名前🎉' + func"


async def check_non_ascii(client: LanguageClient, encoding: str) -> None:
    """Columns in the negotiated encoding: the CJK text, emoji and tab before the word count right."""
    uri = f"file:///work/c-{encoding}.py"
    open_document(client, uri, "# module 1\n\n" + NON_ASCII_LINE)
    col = column(NON_ASCII_LINE, encoding)
    result = await completion(client, uri, 2, col)
    assert result.items
    edit = result.items[0].text_edit
    assert edit.range.end == types.Position(2, col) and edit.range.start == types.Position(2, col - 4)
    assert edit.new_text.startswith("func")


@pytest.mark.asyncio
async def test_non_ascii_lines_give_the_right_range(client: LanguageClient):
    assert client.position_encoding == "utf-8"  # Neovim 0.11 offers utf-8 first
    await check_non_ascii(client, client.position_encoding)


@pytest.mark.asyncio
async def test_non_ascii_lines_in_utf16(http_server):
    """VS Code offers no position encodings, so LSP's default UTF-16 is used."""
    config = ClientServerConfig(server_command=LSP_COMMAND, server_env={"PYTHONPATH": str(ROOT)})
    client = await config.start()
    try:
        result = await client.initialize_session(types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            initialization_options={"serverUrl": http_server, "timeoutMs": 10000}))
        assert (result.capabilities.position_encoding or "utf-16") == "utf-16"
        await check_non_ascii(client, "utf-16")
    finally:
        await client.shutdown_session()
        await client.stop()


@pytest.mark.asyncio
async def test_disabled_language_gets_nothing(client: LanguageClient):
    uri = "file:///work/d.rs"
    open_document(client, uri, "fn func", language="rust")
    result = await completion(client, uri, 0, 7)
    assert not result.items


@pytest.mark.asyncio
async def test_superseded_request_is_dropped(client: LanguageClient):
    uri = "file:///work/e.py"
    open_document(client, uri, SOURCE)
    first = completion(client, uri, 5, 8)
    second = completion(client, uri, 5, 8)
    old, new = await asyncio.gather(first, second)
    assert not old.items and new.items


@pytest.mark.asyncio
async def test_cancel_request(client: LanguageClient):
    uri = "file:///work/f.py"
    open_document(client, uri, SOURCE)
    params = types.CompletionParams(text_document=types.TextDocumentIdentifier(uri=uri),
                                    position=types.Position(line=5, character=8))
    future = client.protocol.send_request(types.TEXT_DOCUMENT_COMPLETION, params, msg_id="to-cancel")
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="to-cancel"))
    try:
        answer = await asyncio.wait_for(asyncio.wrap_future(future), timeout=10)
    except Exception as e:  # noqa: BLE001 - the cancelled request may answer with an error
        assert "cancel" in str(e).lower(), e
    else:
        assert not answer.items  # or with nothing
    assert (await completion(client, uri, 5, 8)).items  # the server keeps serving


@pytest.mark.asyncio
async def test_backend_down_then_up(tiny_model):
    """A dead backend gives empty results fast and one warning, then recovers when it comes back."""
    port = free_port()
    config = ClientServerConfig(server_command=LSP_COMMAND, server_env={"PYTHONPATH": str(ROOT)})
    client = await config.start()
    try:
        await client.initialize_session(types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            initialization_options={"serverUrl": f"http://127.0.0.1:{port}", "timeoutMs": 3000}))
        uri = "file:///work/g.py"
        open_document(client, uri, SOURCE)
        loop = asyncio.get_running_loop()
        for _ in range(3):
            t0 = loop.time()
            assert not (await completion(client, uri, 5, 8)).items
            assert loop.time() - t0 < 2.0
        await asyncio.sleep(0.2)
        warnings = [m for m in client.messages if m.type == types.MessageType.Warning]
        assert len(warnings) == 1 and "unreachable" in warnings[0].message
        with running_server(tiny_model, port=port):
            assert (await completion(client, uri, 5, 8)).items
    finally:
        await client.shutdown_session()
        await client.stop()


@pytest.mark.asyncio
async def test_bad_settings_are_reported_not_fatal(client: LanguageClient, http_server):
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"codelstm": {"maxChars": "lots", "timeoutMs": 8000, "serverUrl": http_server}}))
    await asyncio.sleep(0.3)
    assert any("maxChars" in m.message for m in client.messages)
    uri = "file:///work/h.py"
    open_document(client, uri, SOURCE)
    assert (await completion(client, uri, 5, 8)).items


@pytest.mark.asyncio
async def test_embedded_model_needs_no_service(tiny_model):
    config = ClientServerConfig(server_command=[*LSP_COMMAND, "--embedded", "--model", str(tiny_model)],
                                server_env={"PYTHONPATH": str(ROOT)})
    client = await config.start()
    try:
        await client.initialize_session(types.InitializeParams(capabilities=client_capabilities("neovim"),
                                                               initialization_options={"timeoutMs": 20000}))
        uri = "file:///work/embedded.py"
        open_document(client, uri, SOURCE)
        result = await completion(client, uri, 5, 8)
        assert result.items and result.items[0].label.startswith("func")
    finally:
        await client.shutdown_session()
        await client.stop()
