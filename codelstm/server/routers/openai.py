"""The OpenAI-style dialect: /v1/completions (streaming included) and /v1/models, for the editor plugins
and gateways that speak only it. A token is one UTF-8 byte; see docs/api.md."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Annotated, Any, AsyncIterator, Awaitable

from fastapi import APIRouter, Header, Request

from codelstm.model.generate import Progress
from codelstm.server.deps import ApiKey, ServiceDep, client_key
from codelstm.server.errors import APIError, openai_error_body
from codelstm.server.routers.complete import disconnected, with_workspace, workspace_args
from codelstm.server.schemas import CompleteResponse, OpenAICompletionsRequest
from codelstm.server.service import CompletionService
from codelstm.server.sse import DONE, EventStream, event, merge

router = APIRouter(prefix="/v1", tags=["openai"], dependencies=[ApiKey])

DocumentHeader = Annotated[str | None, Header(alias="X-Codelstm-Document", max_length=2000)]


def model_object(service: CompletionService) -> dict:
    loaded = service.loaded
    try:
        created = int(loaded.path.stat().st_mtime)
    except OSError:
        created = 0
    return {"id": loaded.name, "object": "model", "created": created, "owned_by": "codelstm"}


@router.get("/models")
async def list_models(service: ServiceDep) -> dict:
    """OpenAI's model list: the one model this server serves."""
    return {"object": "list", "data": [model_object(service)]}


@router.get("/models/{model_id:path}")
async def retrieve_model(model_id: str, service: ServiceDep) -> dict:
    """OpenAI's model object for the served model's id; any other id is 404."""
    if model_id != service.loaded.name:
        raise APIError(404, "model_not_found", f"the model {model_id!r} does not exist: this server serves "
                                               f"{service.loaded.name!r}", param="model")
    return model_object(service)


def _finish_reason(native: str) -> str:
    return "length" if native == "length" else "stop"


def _choices(result: CompleteResponse, n: int) -> list[tuple[str, str]]:
    """(text, finish_reason) for each of the n choices a prompt has in OpenAI's numbering: the completions
    best first, then empty ones where the search found fewer distinct completions than n."""
    found = [(c.text, _finish_reason(c.finish_reason)) for c in result.completions]
    return found + [("", "stop")] * (n - len(found))


def _usage(prompts: list[str], results: list[CompleteResponse]) -> dict:
    prompt_bytes = sum(len(p.encode("utf-8")) for p in prompts)
    generated = sum(r.usage.generated_chars for r in results)
    return {"prompt_tokens": prompt_bytes, "completion_tokens": generated, "total_tokens": prompt_bytes + generated,
            "prompt_tokens_details": {"cached_tokens": sum(r.usage.cached_chars for r in results)}}


async def _all(jobs: list[Awaitable[CompleteResponse]]) -> list[CompleteResponse]:
    """Every result, or the first error with the other jobs cancelled (no orphan keeps computing)."""
    tasks = [asyncio.ensure_future(j) for j in jobs]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        return [t.result() for t in tasks]
    finally:
        for t in tasks:
            t.cancel()


@router.post("/completions")
async def completions(body: OpenAICompletionsRequest, request: Request, service: ServiceDep,
                      document: DocumentHeader = None):
    """OpenAI-style completions; temperature 0 or absent means beam search; `stream: true` answers with
    Server-Sent Events. `X-Codelstm-Document` (or `user`) names the document, which enables the state cache."""
    if body.logprobs is not None:
        raise APIError(400, "unsupported_parameter", "logprobs is not supported by this server: leave it out "
                       "(or null); each completion's total log-probability is in /v1/complete", param="logprobs")
    requests = [with_workspace(r, request) for r in body.native(document or body.user)]
    where = workspace_args(request)  # the X-Codelstm-Workspace header names a workspace of this key
    scope = client_key(request)
    head = {"id": f"cmpl-{uuid.uuid4().hex[:24]}", "object": "text_completion", "created": int(time.time()),
            "model": service.loaded.name}
    prompts = body.prompts
    echo = prompts if body.echo else [""] * len(prompts)
    if not body.stream:
        results = await _all([service.complete(r, scope, disconnected(request), **where) for r in requests])
        return {**head, "model": results[0].model,
                "choices": [{"text": echo[i] + text, "index": i * body.n + j, "logprobs": None, "finish_reason": reason}
                            for i, result in enumerate(results) for j, (text, reason) in enumerate(_choices(result, body.n))],
                "usage": _usage(prompts, results)}
    events = merge([service.stream(r, scope, disconnected(request), **where) for r in requests])
    first = await anext(events)  # an error before anything is decided is a plain HTTP error
    include_usage = body.stream_options is not None and body.stream_options.include_usage
    return EventStream(_openai_events(first, events, head, body.n, echo, prompts, include_usage))


async def _openai_events(first: tuple[int, Any], events: AsyncIterator[tuple[int, Any]], head: dict, n: int,
                         echo: list[str], prompts: list[str], include_usage: bool) -> AsyncIterator[str]:
    """text_completion chunks: each choice's decided text as it grows, then the rest of it with its
    finish_reason; an error after the first chunk is an error event; always `[DONE]` last."""
    sent = [[""] * n for _ in prompts]  # completion text already sent, per prompt and choice
    results: list[CompleteResponse] = []

    def chunk(choices: list[dict]) -> str:
        return event({**head, "choices": choices})

    def choice(i: int, j: int, text: str, reason: str | None) -> dict:
        return {"text": text, "index": i * n + j, "logprobs": None, "finish_reason": reason}

    if any(echo):
        yield chunk([choice(i, j, echo[i], None) for i in range(len(prompts)) for j in range(n) if echo[i]])
    try:
        item: tuple[int, Any] | None = first
        while item is not None:
            i, update = item
            if isinstance(update, Progress):
                grown = [(j, update.text) for j in range(min(n, update.results)) if len(update.text) > len(sent[i][j])]
                if grown:
                    yield chunk([choice(i, j, text[len(sent[i][j]):], None) for j, text in grown])
                    for j, text in grown:
                        sent[i][j] = text
            else:
                results.append(update)
                yield chunk([choice(i, j, text[len(sent[i][j]):], reason)
                             for j, (text, reason) in enumerate(_choices(update, n))])
            item = await anext(events, None)
    except APIError as e:
        yield event(openai_error_body(e.status, e.type, e.message, e.param))
    finally:
        await events.aclose()
    if include_usage and len(results) == len(prompts):
        yield event({**head, "choices": [], "usage": _usage(prompts, results)})
    yield DONE
