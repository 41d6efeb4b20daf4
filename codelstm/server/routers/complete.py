"""The native completion endpoint /v1/complete (the OpenAI-style dialect is in routers/openai.py)."""

from __future__ import annotations

import uuid
from typing import AsyncIterator

from fastapi import APIRouter, Request
from pydantic import ValidationError

from codelstm.model.generate import Progress
from codelstm.server.deps import ApiKey, ServiceDep, client_key
from codelstm.server.errors import APIError
from codelstm.server.routers.workspaces import owner_of
from codelstm.server.schemas import CompleteRequest, CompleteResponse
from codelstm.server.sse import DONE, EventStream, event

router = APIRouter(prefix="/v1", tags=["completion"], dependencies=[ApiKey])


async def disconnected(request: Request) -> None:
    """Resolves when the client closes the connection (the body is read: only the disconnect is left)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


WORKSPACE_HEADER = "x-codelstm-workspace"  # what a balancer hashes on (SPEC section 8); also names the workspace


def with_workspace(body: CompleteRequest, request: Request) -> CompleteRequest:
    """The request with the workspace the X-Codelstm-Workspace header names, when the body names none."""
    header = request.headers.get(WORKSPACE_HEADER)
    if header is None or header == body.workspace_id:
        return body
    if body.workspace_id is not None:
        raise APIError(422, "invalid_request", f"workspace_id {body.workspace_id!r} and the X-Codelstm-Workspace "
                                               f"header {header!r} name different workspaces")
    try:
        return CompleteRequest.model_validate({**body.model_dump(), "workspace_id": header})
    except ValidationError:
        raise APIError(422, "invalid_request", "the X-Codelstm-Workspace header is not a workspace id (1 to 200 "
                                               "of the characters A-Z a-z 0-9 . _ : @ / + = -)") from None


def workspace_args(request: Request) -> dict:
    """Where /v1/complete looks a workspace id up: this app's workspaces, among those of the request's key."""
    return {"workspaces": request.app.state.workspaces, "owner": owner_of(request)}


@router.post("/complete", response_model=CompleteResponse)
async def complete(body: CompleteRequest, request: Request, service: ServiceDep):
    """Complete the text before the cursor; with `stream: true`, as Server-Sent Events (docs/api.md)."""
    body = with_workspace(body, request)
    if not body.stream:
        return await service.complete(body, client_key(request), disconnected(request), **workspace_args(request))
    events = service.stream(body, client_key(request), disconnected(request), **workspace_args(request))
    first = await anext(events)  # an error before anything is decided is a plain HTTP error
    head = {"id": f"cmpl-{uuid.uuid4().hex[:16]}", "model": service.loaded.name}
    return EventStream(_native_events(first, events, head, body.n))


async def _native_events(first: Progress | CompleteResponse, events: AsyncIterator[Progress | CompleteResponse],
                         head: dict, n: int) -> AsyncIterator[str]:
    """`{"id", "model", "completions": [{"index", "text"}]}` events with each completion's newly decided text,
    then one with the rest of each text, its finish_reason and logprob, `usage` and `timing_ms`; an error
    after the first event is an error event; always `[DONE]` last."""
    sent = [""] * n
    try:
        update: Progress | CompleteResponse | None = first
        while isinstance(update, Progress):
            grown = [j for j in range(min(n, update.results)) if len(update.text) > len(sent[j])]
            if grown:
                yield event({**head, "completions": [{"index": j, "text": update.text[len(sent[j]):]} for j in grown]})
                for j in grown:
                    sent[j] = update.text
            update = await anext(events)
        final = {**update.model_dump(), **head}
        final["completions"] = [{"index": j, **c, "text": c["text"][len(sent[j]):]}
                                for j, c in enumerate(final["completions"])]
        yield event(final)
    except APIError as e:
        yield event({"error": {"type": e.type, "message": e.message}})
    finally:
        await events.aclose()
    yield DONE
