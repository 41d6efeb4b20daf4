"""The whole chain a user sees: the language server uploads the editor's project folder, the real service
(the bundled model, which ships its mixer) mixes that workspace into its completions, and a name that only
the project defines comes back in the editor; when the service loses the workspace, its answer says so and
the language server uploads the folder again without any edit."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from lsprotocol import types

from codelstm.lsp.workspace import workspace_id_for
from codelstm.paths import DEFAULT_MODEL
from tests.conftest import running_server
from tests.lsp.conftest import open_document
from tests.lsp.test_workspace import start_client, stop_client, text_bytes, wait_for_workspace

NAME = "frobnicate_widget_count"  # a name the bundled model never saw
PROJECT = {"pkg/widgets.py": (f"def {NAME}(widgets, scale):\n    return len(widgets) * scale\n\n\n"
                              f"print({NAME}([1, 2], 3))\ntotal = {NAME}(items, 2)\nassert {NAME}([], 1) == 0\n")}
TYPED = "import os\n\nx = frobnicate_w"


@pytest.fixture(scope="module")
def bundled_server():
    with running_server(DEFAULT_MODEL) as url:
        yield url


def make_project(root: Path) -> dict[str, str]:
    for rel, text in PROJECT.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return dict(PROJECT)


def labels(result) -> list[str]:
    items = result.items if hasattr(result, "items") else result or []
    return [item.label for item in items]


async def complete_at_end(client, uri: str, text: str):
    last = text.split("\n")[-1]
    return await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=text.count("\n"), character=len(last))))


@pytest.mark.asyncio
async def test_a_name_only_the_project_defines_is_offered_and_a_lost_workspace_comes_back(bundled_server, tmp_path):
    files = make_project(tmp_path)
    workspace_id = workspace_id_for(tmp_path)
    client = await start_client(tmp_path, bundled_server, workspaceDebounceMs=60_000)
    try:
        await wait_for_workspace(bundled_server, workspace_id, len(files), text_bytes(files))
        uri = (tmp_path / "main.py").as_uri()  # a new file: not in the uploaded workspace
        open_document(client, uri, TYPED)
        offered = labels(await complete_at_end(client, uri, TYPED))
        assert any(NAME in label for label in offered), offered

        async with httpx.AsyncClient() as http:  # the replica loses it (evicted, restarted)
            assert (await http.delete(f"{bundled_server}/v1/workspaces/{workspace_id}")).status_code == 204
        without = labels(await complete_at_end(client, uri, TYPED))  # answered from the document: "missing"
        assert not any(NAME in label for label in without), without
        # no edit, no save: the answer alone makes the language server upload the folder again, with the
        # open documents (main.py among them now)
        files["main.py"] = TYPED
        await wait_for_workspace(bundled_server, workspace_id, len(files), text_bytes(files), timeout=30)
        await asyncio.sleep(0.2)
        again = labels(await complete_at_end(client, uri, TYPED))
        assert any(NAME in label for label in again), again
    finally:
        await stop_client(client)
