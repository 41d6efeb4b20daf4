"""The real language server over stdio (pytest-lsp), in front of a real HTTP service on loopback."""

from __future__ import annotations

import sys

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.conftest import ROOT, running_server

LSP_COMMAND = [sys.executable, "-m", "codelstm.cli", "lsp"]


@pytest.fixture(scope="module")
def http_server(tiny_model):
    with running_server(tiny_model) as url:
        yield url


@pytest_lsp.fixture(config=ClientServerConfig(server_command=LSP_COMMAND, server_env={"PYTHONPATH": str(ROOT)}))
async def client(lsp_client: LanguageClient, http_server):
    result = await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("neovim"),
        initialization_options={"serverUrl": http_server, "timeoutMs": 10000, "languages": ["python"]},
    ))
    lsp_client.position_encoding = result.capabilities.position_encoding or "utf-16"
    yield
    await lsp_client.shutdown_session()


def open_document(client: LanguageClient, uri: str, text: str, language: str = "python") -> None:
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id=language, version=1, text=text)))


def column(line: str, encoding: str) -> int:
    """Length of `line` in the units of the negotiated position encoding."""
    if encoding == "utf-8":
        return len(line.encode("utf-8"))
    if encoding == "utf-32":
        return len(line)
    return len(line.encode("utf-16-le")) // 2
