"""Where completions come from: the HTTP service (default) or a model loaded in-process (--embedded)."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Protocol
from urllib.parse import quote

import httpx

UPLOAD_TIMEOUT_S = 30.0  # a workspace upload is background work: no keystroke waits on it


class BackendUnavailable(Exception):
    """The backend did not answer in time or at all; the message says which, for one warning."""


class WorkspaceRejected(Exception):
    """The service refused a workspace request (4xx); `status` and `kind` say why (413 workspace_full...)."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


def workspace_missing(usage: Any) -> bool:
    """Does a completion's `usage` say the workspace it named was not there (never uploaded, evicted,
    another replica's): `usage.workspace == "missing"` (docs/api.md)?"""
    return isinstance(usage, dict) and usage.get("workspace") == "missing"


class Backend(Protocol):
    async def complete(self, body: dict[str, Any], timeout_s: float) -> list[dict[str, Any]]: ...

    async def close(self) -> None: ...


class HttpBackend:
    supports_workspaces = True

    def __init__(self, url: str, api_key: str | None = None) -> None:
        self.url = url
        self.api_key = api_key
        self._client = httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_connections=16))
        # called with (workspace_id, monotonic time the request was sent) when an answer says it was missing
        self.on_workspace_missing: Callable[[str, float], None] | None = None

    def _headers(self, workspace_id: str | None = None, document_id: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        # with several replicas, a balancer hashes on these so a workspace, its documents and their state meet
        if workspace_id:
            headers["X-Codelstm-Workspace"] = workspace_id
        if document_id:
            headers["X-Codelstm-Document"] = document_id
        return headers

    async def complete(self, body: dict[str, Any], timeout_s: float) -> list[dict[str, Any]]:
        headers = self._headers(body.get("workspace_id"), body.get("document_id"))
        sent_at = time.monotonic()
        try:
            r = await self._client.post("/v1/complete", json=body, headers=headers, timeout=timeout_s)
        except httpx.TimeoutException:
            raise BackendUnavailable(f"codelstm server at {self.url} did not answer within {timeout_s * 1000:.0f} ms") from None
        except httpx.HTTPError as e:
            raise BackendUnavailable(f"codelstm server at {self.url} is unreachable ({type(e).__name__})") from None
        if r.status_code == 409:  # superseded by a newer request for this document: nothing to show, nothing wrong
            return []
        if r.status_code != 200:
            try:
                message = r.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = r.text[:200]
            raise BackendUnavailable(f"codelstm server answered {r.status_code}: {message}")
        answer = r.json()
        if body.get("workspace_id") and self.on_workspace_missing and workspace_missing(answer.get("usage")):
            self.on_workspace_missing(body["workspace_id"], sent_at)
        return answer["completions"]

    async def put_documents(self, workspace_id: str, body: bytes) -> dict[str, Any]:
        """PUT an already encoded `{"documents": [...]}` body; the answer has `documents` and `bytes`."""
        headers = {**self._headers(workspace_id), "Content-Type": "application/json"}
        r = await self._call("PUT", f"/v1/workspaces/{quote(workspace_id, safe='')}/documents", headers, body)
        return r.json()

    async def delete_document(self, workspace_id: str, path: str) -> None:
        await self._call("DELETE", f"/v1/workspaces/{quote(workspace_id, safe='')}/documents",
                         self._headers(workspace_id), params={"path": path})

    async def delete_workspace(self, workspace_id: str) -> None:
        await self._call("DELETE", f"/v1/workspaces/{quote(workspace_id, safe='')}", self._headers(workspace_id))

    async def _call(self, method: str, url: str, headers: dict[str, str], content: bytes | None = None,
                    params: dict[str, str] | None = None) -> httpx.Response:
        try:
            r = await self._client.request(method, url, headers=headers, content=content, params=params,
                                           timeout=UPLOAD_TIMEOUT_S)
        except httpx.TimeoutException:
            raise BackendUnavailable(f"codelstm server at {self.url} did not take the workspace upload "
                                     f"within {UPLOAD_TIMEOUT_S:.0f} s") from None
        except httpx.HTTPError as e:
            raise BackendUnavailable(f"codelstm server at {self.url} is unreachable ({type(e).__name__})") from None
        if r.status_code < 300:
            return r
        try:
            error = r.json()["error"]
            kind, message = str(error["type"]), str(error["message"])
        except (ValueError, KeyError, TypeError):
            kind, message = "http_error", r.text[:200]
        if 400 <= r.status_code < 500 and r.status_code not in (408, 429):
            raise WorkspaceRejected(r.status_code, kind, message)
        raise BackendUnavailable(f"codelstm server answered {r.status_code}: {message}")

    async def close(self) -> None:
        await self._client.aclose()


class EmbeddedBackend:
    """The model in this process: one user, no HTTP service. Inference runs in a worker thread."""

    supports_workspaces = False  # nothing to upload to: the context models see the document only

    def __init__(self, model_path=None) -> None:
        from codelstm.model import CheckpointError, load_checkpoint
        from codelstm.model.cache import StateCache
        from codelstm.model.engine import InferenceEngine
        from codelstm.model.mixer import MixerWeights
        from codelstm.paths import DEFAULT_MODEL

        path = model_path or DEFAULT_MODEL
        model, _ = load_checkpoint(path)
        try:  # the checkpoint's mixer.json, as `serve` loads it by default (CODELSTM_CONTEXT=auto)
            mixer = MixerWeights.load(path)
        except ValueError as e:
            raise CheckpointError(str(e)) from None
        self.engine = InferenceEngine(model, StateCache(64 << 20), mixer=mixer)
        self._lock = asyncio.Lock()

    async def complete(self, body: dict[str, Any], timeout_s: float) -> list[dict[str, Any]]:
        from codelstm.model.engine import EngineRequest
        from codelstm.model.generate import SearchSpec

        spec = SearchSpec(mode=body["mode"], max_chars=body["max_chars"], n=body["n"], suffix=body.get("suffix", ""))
        request = EngineRequest(body["prefix"].encode("utf-8"), spec, body.get("document_id"))
        async with self._lock:
            try:
                result = await asyncio.wait_for(asyncio.to_thread(self.engine.run, [request]), timeout_s)
            except asyncio.TimeoutError:
                raise BackendUnavailable(f"embedded model took over {timeout_s * 1000:.0f} ms") from None
        return [{"text": c.text, "logprob": c.logprob, "finish_reason": c.finish_reason} for c in result[0].completions]

    async def close(self) -> None:
        pass
