"""Where completions come from: the HTTP service (default) or a model loaded in-process (--embedded)."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import httpx


class BackendUnavailable(Exception):
    """The backend did not answer in time or at all; the message says which, for one warning."""


class Backend(Protocol):
    async def complete(self, body: dict[str, Any], timeout_s: float) -> list[dict[str, Any]]: ...

    async def close(self) -> None: ...


class HttpBackend:
    def __init__(self, url: str, api_key: str | None = None) -> None:
        self.url = url
        self.api_key = api_key
        self._client = httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_connections=16))

    async def complete(self, body: dict[str, Any], timeout_s: float) -> list[dict[str, Any]]:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        if body.get("document_id"):  # lets a load balancer keep a document on the replica holding its state
            headers["X-Codelstm-Document"] = body["document_id"]
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
        return r.json()["completions"]

    async def close(self) -> None:
        await self._client.aclose()


class EmbeddedBackend:
    """The model in this process: one user, no HTTP service. Inference runs in a worker thread."""

    def __init__(self, model_path=None) -> None:
        from codelstm.model import load_checkpoint
        from codelstm.model.cache import StateCache
        from codelstm.model.engine import InferenceEngine
        from codelstm.paths import DEFAULT_MODEL

        model, _ = load_checkpoint(model_path or DEFAULT_MODEL)
        self.engine = InferenceEngine(model, StateCache(64 << 20))
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
