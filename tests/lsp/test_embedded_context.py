"""`codelstm lsp --embedded` completes as `serve` does: with the checkpoint's mixer.json mixed in."""

from __future__ import annotations

import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig, client_capabilities

from tests.conftest import ROOT
from tests.lsp.conftest import LSP_COMMAND, open_document
from tests.training.test_evaluate_context import copy_with_fitted_mixer

# a name the tiny model never saw, used over and over: only the context models can know how it ends
SOURCE = "".join(f"    zorblax_quintent.{k} = value\n" for k in "abcdefgh") + "    zorb"


async def first_label(model) -> str:
    config = ClientServerConfig(server_command=[*LSP_COMMAND, "--embedded", "--model", str(model)],
                                server_env={"PYTHONPATH": str(ROOT)})
    client = await config.start()
    try:
        await client.initialize_session(types.InitializeParams(capabilities=client_capabilities("neovim"),
                                                               initialization_options={"timeoutMs": 20000}))
        uri = "file:///work/embedded_context.py"
        open_document(client, uri, SOURCE)
        lines = SOURCE.split("\n")
        result = await client.text_document_completion_async(types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=len(lines) - 1, character=len(lines[-1]))))
        assert result.items, "no completion items"
        return result.items[0].label
    finally:
        await client.shutdown_session()
        await client.stop()


@pytest.mark.asyncio
async def test_embedded_mode_mixes_in_the_checkpoints_context_models(tiny_model, tmp_path):
    assert await first_label(tiny_model) != "zorblax_quintent"  # the LSTM alone does not know the name
    mixed = copy_with_fitted_mixer(tiny_model, tmp_path / "model")
    assert await first_label(mixed) == "zorblax_quintent"
