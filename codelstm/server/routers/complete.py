"""Completion endpoints: the native /v1/complete and the OpenAI-style /v1/completions."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from pydantic import ValidationError

from codelstm.server.deps import ApiKey, ServiceDep, client_key
from codelstm.server.errors import APIError
from codelstm.server.routers.workspaces import owner_of
from codelstm.server.schemas import CompleteRequest, CompleteResponse, OpenAICompletionsRequest

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
async def complete(body: CompleteRequest, request: Request, service: ServiceDep) -> CompleteResponse:
    """Complete the text before the cursor."""
    return await service.complete(with_workspace(body, request), client_key(request), disconnected(request),
                                  **workspace_args(request))


@router.post("/completions")
async def openai_completions(body: OpenAICompletionsRequest, request: Request, service: ServiceDep) -> dict:
    """OpenAI-style completions (max_tokens counts characters); temperature 0 or absent means beam search."""
    result = await service.complete(with_workspace(body.native(), request), client_key(request),
                                    disconnected(request), **workspace_args(request))
    return {
        "id": result.id,
        "object": "text_completion",
        "created": int(time.time()),
        "model": result.model,
        "choices": [{"text": c.text, "index": i, "logprobs": None,
                     "finish_reason": "length" if c.finish_reason == "length" else "stop"}
                    for i, c in enumerate(result.completions)],
        "usage": {"prompt_tokens": result.usage.prefix_chars, "completion_tokens": result.usage.generated_chars,
                  "total_tokens": result.usage.prefix_chars + result.usage.generated_chars},
    }
