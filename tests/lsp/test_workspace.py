"""Workspaces through the real language server over stdio and a real `codelstm serve` on loopback: what it
uploads from the workspace folder, when edits and files changed on disk arrive, and what happens when the
service loses the workspace or is down. One test uses a small recording HTTP server, to see the
workspace_id and headers of each /v1/complete and count uploads exactly; test_workspace_context.py runs
the same loss against the real service."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from codelstm.lsp.workspace import workspace_id_for
from tests.conftest import ROOT, free_port, running_server
from tests.lsp.conftest import LSP_COMMAND, open_document

MAX_FILE_BYTES = 4096


def make_folder(root: Path) -> dict[str, str]:
    """A project with files that must be left out; returns the files that belong in its workspace."""
    wanted = {"a.py": "import os\n\ndef alpha(value):\n    return value + 1\n",
              "pkg/b.py": "from a import alpha\n\nprint(alpha(2))\n",
              "pkg/sub/c.py": "# deeper\nGAMMA = 3\n"}
    for rel, text in wanted.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / ".gitignore").write_text("secret.py\n*.log\n")
    (root / "secret.py").write_text("TOKEN = 'ignored by .gitignore'\n")
    (root / "pkg" / ".gitignore").write_text("generated_*.py\n")
    (root / "pkg" / "generated_1.py").write_text("ignored = 'by the nested .gitignore'\n")
    (root / "node_modules" / "lib").mkdir(parents=True)
    (root / "node_modules" / "lib" / "vendored.py").write_text("vendored = True\n")
    (root / ".venv").mkdir()
    (root / ".venv" / "site.py").write_text("hidden = True\n")
    (root / "big.py").write_text("# over the per-file cap\n" * 400)  # 9.6 KB > MAX_FILE_BYTES
    (root / "blob.py").write_bytes(b"\x00\x01binary")
    (root / "notes.txt").write_text("not a source file of an enabled language\n")
    (root / "main.rs").write_text("fn main() {}\n")  # rust is not enabled
    return wanted


def text_bytes(files: dict[str, str]) -> int:
    """As the service counts a workspace: UTF-8 bytes plus one separator per document."""
    return sum(len(t.encode("utf-8")) + 1 for t in files.values())


async def start_client(root: Path, url: str, capabilities: str = "neovim", **options) -> LanguageClient:
    client = await ClientServerConfig(server_command=LSP_COMMAND, server_env={"PYTHONPATH": str(ROOT)}).start()
    await client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities(capabilities), root_uri=root.as_uri(),
        workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
        initialization_options={"serverUrl": url, "timeoutMs": 10000, "languages": ["python"],
                                "workspaceMaxFileBytes": MAX_FILE_BYTES, **options}))
    return client


async def stop_client(client: LanguageClient) -> None:
    await client.shutdown_session()
    await client.stop()


async def workspace_info(url: str, workspace_id: str) -> dict | None:
    async with httpx.AsyncClient() as http:
        r = await http.get(f"{url}/v1/workspaces/{workspace_id}", timeout=10)
    return r.json() if r.status_code == 200 else None


async def wait_for_workspace(url: str, workspace_id: str, documents: int, nbytes: int, timeout: float = 60) -> dict:
    """Poll the real service until the workspace holds exactly this many documents and bytes."""
    deadline = time.monotonic() + timeout
    info = None
    while time.monotonic() < deadline:
        info = await workspace_info(url, workspace_id)
        if info is not None and (info["documents"], info["bytes"]) == (documents, nbytes):
            return info
        await asyncio.sleep(0.1)
    raise AssertionError(f"workspace never held {documents} documents / {nbytes} bytes; last seen {info}")


def progress_kinds(client: LanguageClient) -> list[list[str]]:
    return [[getattr(v, "kind", "") for v in values] for values in client.progress_reports.values()]


@pytest.mark.asyncio
async def test_workspace_folder_is_uploaded_without_ignored_files_with_progress(http_server, tmp_path):
    wanted = make_folder(tmp_path)
    client = await start_client(tmp_path, http_server)
    try:
        await wait_for_workspace(http_server, workspace_id_for(tmp_path), len(wanted), text_bytes(wanted))
        deadline = time.monotonic() + 10
        while not any(k and k[-1] == "end" for k in progress_kinds(client)) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        kinds = progress_kinds(client)
        assert any(k[0] == "begin" and k[-1] == "end" for k in kinds), kinds
        end = [v for values in client.progress_reports.values() for v in values if v.kind == "end"][-1]
        assert end.message.startswith(f"{len(wanted)} files")
    finally:
        await stop_client(client)


@pytest.mark.asyncio
async def test_a_workspace_bigger_than_one_request_body_arrives_whole(http_server, tmp_path):
    """The service refuses bodies over 1 MiB: 24 files of 60 KB (1.4 MB) must go in several requests."""
    files = {f"mod_{i:02d}.py": f"# file {i}\n" + f"value_{i} = {i}\n" * 4500 for i in range(24)}
    for rel, text in files.items():
        (tmp_path / rel).write_text(text)
    assert text_bytes(files) > 1 << 20
    client = await start_client(tmp_path, http_server, workspaceMaxFileBytes=100_000)
    try:
        await wait_for_workspace(http_server, workspace_id_for(tmp_path), len(files), text_bytes(files))
    finally:
        await stop_client(client)


@pytest.mark.asyncio
async def test_edits_of_an_open_document_are_uploaded_after_the_debounce(http_server, tmp_path):
    wanted = make_folder(tmp_path)
    workspace_id = workspace_id_for(tmp_path)
    client = await start_client(tmp_path, http_server, workspaceDebounceMs=1500)
    try:
        await wait_for_workspace(http_server, workspace_id, len(wanted), text_bytes(wanted))
        uri = (tmp_path / "a.py").as_uri()
        open_document(client, uri, wanted["a.py"])
        added = "\ndef beta(value):\n    return alpha(value) * 2\n"
        lines = wanted["a.py"].count("\n")
        sent = time.monotonic()
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[types.TextDocumentContentChangePartial(
                range=types.Range(start=types.Position(lines, 0), end=types.Position(lines, 0)), text=added)]))
        await asyncio.sleep(0.5)
        assert (await workspace_info(http_server, workspace_id))["bytes"] == text_bytes(wanted)  # not yet
        wanted["a.py"] += added
        await wait_for_workspace(http_server, workspace_id, len(wanted), text_bytes(wanted))
        assert time.monotonic() - sent >= 1.4
    finally:
        await stop_client(client)


@pytest.mark.asyncio
async def test_files_changed_on_disk_are_uploaded_and_deleted_files_removed(http_server, tmp_path):
    wanted = make_folder(tmp_path)
    workspace_id = workspace_id_for(tmp_path)
    client = await start_client(tmp_path, http_server, workspaceDebounceMs=200)
    try:
        await wait_for_workspace(http_server, workspace_id, len(wanted), text_bytes(wanted))
        (tmp_path / "pkg" / "new.py").write_text("NEW = 'made on disk'\n")
        (tmp_path / "pkg" / "b.py").unlink()
        (tmp_path / "a.py").write_text("CHANGED = 1\n")
        (tmp_path / "secret2.log").write_text("not python\n")
        client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(changes=[
            types.FileEvent(uri=(tmp_path / "pkg" / "new.py").as_uri(), type=types.FileChangeType.Created),
            types.FileEvent(uri=(tmp_path / "pkg" / "b.py").as_uri(), type=types.FileChangeType.Deleted),
            types.FileEvent(uri=(tmp_path / "a.py").as_uri(), type=types.FileChangeType.Changed),
            types.FileEvent(uri=(tmp_path / "secret.py").as_uri(), type=types.FileChangeType.Changed)]))
        del wanted["pkg/b.py"]
        wanted["pkg/new.py"] = "NEW = 'made on disk'\n"
        wanted["a.py"] = "CHANGED = 1\n"
        await wait_for_workspace(http_server, workspace_id, len(wanted), text_bytes(wanted))
    finally:
        await stop_client(client)


@pytest.mark.asyncio
async def test_a_workspace_lost_by_the_service_is_uploaded_again(http_server, tmp_path):
    """Evicted (here: deleted behind the language server's back): the next upload of an edit notices that
    the service made the workspace afresh, and the whole folder is uploaded again."""
    wanted = make_folder(tmp_path)
    workspace_id = workspace_id_for(tmp_path)
    client = await start_client(tmp_path, http_server, workspaceDebounceMs=200)
    try:
        await wait_for_workspace(http_server, workspace_id, len(wanted), text_bytes(wanted))
        async with httpx.AsyncClient() as http:
            assert (await http.delete(f"{http_server}/v1/workspaces/{workspace_id}")).status_code == 204
        uri = (tmp_path / "pkg" / "sub" / "c.py").as_uri()
        open_document(client, uri, wanted["pkg/sub/c.py"] + "DELTA = 4\n")
        wanted["pkg/sub/c.py"] += "DELTA = 4\n"
        await wait_for_workspace(http_server, workspace_id, len(wanted), text_bytes(wanted))
    finally:
        await stop_client(client)


@pytest.mark.asyncio
async def test_too_big_workspace_stops_at_the_cap_with_one_message(http_server, tmp_path):
    files = {f"part_{i}.py": f"# {i}\n" + "x = 1\n" * 50 for i in range(6)}  # 305 bytes each as counted
    for rel, text in files.items():
        (tmp_path / rel).write_text(text)
    client = await start_client(tmp_path, http_server, workspaceMaxBytes=1024)
    try:
        info = await wait_for_workspace(http_server, workspace_id_for(tmp_path), 3, 3 * 305)
        await asyncio.sleep(2)
        assert await workspace_info(http_server, workspace_id_for(tmp_path)) == info
        notices = [m for m in client.messages if "workspaceMaxBytes" in m.message]
        assert len(notices) == 1 and "left out 3" in notices[0].message, client.messages
        assert not [m for m in client.messages if m.type == types.MessageType.Warning]
    finally:
        await stop_client(client)


@pytest.mark.asyncio
async def test_backend_down_uploads_fail_quietly_and_retry_when_it_is_back(tiny_model, tmp_path):
    wanted = make_folder(tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    client = await start_client(tmp_path, url, capabilities="visual-studio-code", timeoutMs=3000)
    try:
        uri = (tmp_path / "a.py").as_uri()
        open_document(client, uri, wanted["a.py"] + "def al")
        wanted["a.py"] += "def al"
        loop = asyncio.get_running_loop()
        for _ in range(3):
            t0 = loop.time()
            result = await client.text_document_completion_async(types.CompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(4, 6)))
            assert not result.items and loop.time() - t0 < 2.0
        await asyncio.sleep(2.5)  # the upload's first retry fails too
        warnings = [m for m in client.messages if m.type == types.MessageType.Warning]
        assert len(warnings) == 1 and "unreachable" in warnings[0].message, client.messages
        with running_server(tiny_model, port=port):
            result = await client.text_document_completion_async(types.CompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(4, 6)))
            assert result.items
            await wait_for_workspace(url, workspace_id_for(tmp_path), len(wanted), text_bytes(wanted), timeout=30)
    finally:
        await stop_client(client)


class Recorder(BaseHTTPRequestHandler):
    """Answers like the service, records every request; its workspace can be 'lost' by the test."""

    log: list[tuple[str, str, dict, bytes]]
    paths: set[str]  # the workspace's documents; empty: missing

    def _answer(self, status: int, payload: dict | None = None) -> None:
        body = json.dumps(payload).encode() if payload is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _record(self) -> bytes:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).log.append((self.command, self.path, dict(self.headers), body))
        return body

    def do_POST(self) -> None:
        self._record()
        usage = {"prefix_chars": 1, "workspace": "present" if type(self).paths else "missing"}
        self._answer(200, {"id": "x", "model": "fake", "usage": usage, "timing_ms": {},
                           "completions": [{"text": "pha", "logprob": -0.1, "finish_reason": "identifier_end"}]})

    def do_PUT(self) -> None:
        body = self._record()
        time.sleep(0.5)  # a slow upload: completions sent meanwhile still hear "missing"
        type(self).paths |= {d["path"] for d in json.loads(body)["documents"]}
        self._answer(200, {"workspace_id": "x", "documents": len(type(self).paths), "bytes": 0})

    def do_DELETE(self) -> None:
        self._record()
        if "/documents" not in self.path:
            type(self).paths = set()
        self._answer(204)

    def log_message(self, *args) -> None:
        pass


@pytest.mark.asyncio
async def test_completions_name_the_workspace_and_a_lost_one_is_uploaded_once(tmp_path):
    wanted = make_folder(tmp_path)
    handler = type("Handler", (Recorder,), {"log": [], "paths": set()})
    http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{http.server_address[1]}"
    client = await start_client(tmp_path, url, workspaceDebounceMs=20_000)  # no upload of the edit meanwhile
    workspace_id = workspace_id_for(tmp_path)

    def full_uploads() -> list[set[str]]:
        """The paths of each full upload: a DELETE of the whole workspace, then its PUTs."""
        uploads: list[set[str]] = []
        for method, path, _, body in list(handler.log):
            if method == "DELETE" and path == f"/v1/workspaces/{workspace_id}":
                uploads.append(set())
            elif method == "PUT" and uploads:
                uploads[-1] |= {d["path"] for d in json.loads(body)["documents"]}
        return uploads

    try:
        for _ in range(100):
            if handler.paths == set(wanted):
                break
            await asyncio.sleep(0.1)
        assert full_uploads() == [set(wanted)]
        uri = (tmp_path / "a.py").as_uri()
        open_document(client, uri, "def al")
        await asyncio.sleep(0.3)
        handler.paths = set()  # the replica lost it
        for _ in range(4):  # every answer says so until the upload lands: one upload, not one per request
            result = await client.text_document_completion_async(types.CompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(0, 6)))
            assert result.items[0].label == "alpha"
        for _ in range(100):
            if len(full_uploads()) >= 2 and handler.paths == set(wanted):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        posts = [(headers, json.loads(body)) for m, _, headers, body in handler.log if m == "POST"]
        assert posts and all(body["workspace_id"] == workspace_id and body["document_id"] == uri
                             for _, body in posts)
        assert all(h["X-Codelstm-Workspace"] == workspace_id and h["X-Codelstm-Document"] == uri for h, _ in posts)
        assert full_uploads() == [set(wanted), set(wanted)]
    finally:
        await stop_client(client)
        http.shutdown()


@pytest.mark.asyncio
async def test_the_servers_own_workspace_limit_ends_the_upload_with_one_message(tiny_model, tmp_path):
    """The service holds 1 MiB per workspace, the language server would send 1.4 MB: what fits stays, the
    user is told once why the rest is missing, and nothing retries."""
    files = {f"mod_{i:02d}.py": f"# file {i}\n" + f"value_{i} = {i}\n" * 4500 for i in range(24)}
    for rel, text in files.items():
        (tmp_path / rel).write_text(text)
    with running_server(tiny_model, workspace_max_mb="1") as url:
        client = await start_client(tmp_path, url, workspaceMaxFileBytes=100_000)
        try:
            deadline = time.monotonic() + 60
            while not any("workspace limit" in m.message for m in client.messages) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            info = await workspace_info(url, workspace_id_for(tmp_path))
            assert info is not None and 0 < info["documents"] < len(files) and info["bytes"] <= 1 << 20
            await asyncio.sleep(2)
            assert await workspace_info(url, workspace_id_for(tmp_path)) == info
            notices = [m for m in client.messages if "workspace limit" in m.message]
            assert len(notices) == 1 and "CODELSTM_WORKSPACE_MAX_MB" in notices[0].message, client.messages
            assert not [m for m in client.messages if m.type == types.MessageType.Warning]
        finally:
            await stop_client(client)


@pytest.mark.asyncio
async def test_a_workspace_folder_added_later_is_uploaded_as_its_own_workspace(http_server, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (first / "one.py").write_text("ONE = 1\n")
    other = {"two.py": "TWO = 2\n", "lib/three.py": "THREE = 3\n"}
    for rel, text in other.items():
        (second / rel).parent.mkdir(parents=True, exist_ok=True)
        (second / rel).write_text(text)
    client = await start_client(first, http_server)
    try:
        await wait_for_workspace(http_server, workspace_id_for(first), 1, len("ONE = 1\n") + 1)
        assert await workspace_info(http_server, workspace_id_for(second)) is None
        client.workspace_did_change_workspace_folders(types.DidChangeWorkspaceFoldersParams(
            event=types.WorkspaceFoldersChangeEvent(
                added=[types.WorkspaceFolder(uri=second.as_uri(), name="second")], removed=[])))
        await wait_for_workspace(http_server, workspace_id_for(second), len(other), text_bytes(other))
    finally:
        await stop_client(client)
