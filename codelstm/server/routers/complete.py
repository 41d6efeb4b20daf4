"""Completion endpoints: the native /v1/complete and the OpenAI-style /v1/completions."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request

from codelstm.server.deps import ApiKey, ServiceDep, client_key
from codelstm.server.schemas import CompleteRequest, CompleteResponse, OpenAICompletionsRequest

router = APIRouter(prefix="/v1", tags=["completion"], dependencies=[ApiKey])


async def disconnected(request: Request) -> None:
    """Resolves when the client closes the connection (the body is read: only the disconnect is left)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


@router.post("/complete", response_model=CompleteResponse)
async def complete(body: CompleteRequest, request: Request, service: ServiceDep) -> CompleteResponse:
    """Complete the text before the cursor."""
    return await service.complete(body, client_key(request), disconnected(request))


@router.post("/completions")
async def openai_completions(body: OpenAICompletionsRequest, request: Request, service: ServiceDep) -> dict:
    """OpenAI-style completions (max_tokens counts characters); temperature 0 or absent means beam search."""
    result = await service.complete(body.native(), client_key(request), disconnected(request))
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
