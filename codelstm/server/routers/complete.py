"""Completion endpoints: the native /v1/complete and the OpenAI-style /v1/completions."""

from __future__ import annotations

import time

from fastapi import APIRouter

from codelstm.server.deps import ApiKey, ServiceDep
from codelstm.server.schemas import CompleteRequest, CompleteResponse, OpenAICompletionsRequest

router = APIRouter(prefix="/v1", tags=["completion"], dependencies=[ApiKey])


@router.post("/complete", response_model=CompleteResponse)
async def complete(body: CompleteRequest, service: ServiceDep) -> CompleteResponse:
    """Complete the text before the cursor."""
    return await service.complete(body)


@router.post("/completions")
async def openai_completions(body: OpenAICompletionsRequest, service: ServiceDep) -> dict:
    """OpenAI-style completions (max_tokens counts characters); temperature 0 or absent means beam search."""
    stop = [body.stop] if isinstance(body.stop, str) else (body.stop or [])
    native = CompleteRequest(prefix=body.prompt, suffix=body.suffix or "", mode="block" if body.max_tokens > 80 else "line",
                             max_chars=body.max_tokens, n=body.n, stop=stop[:8],
                             temperature=body.temperature or None)
    result = await service.complete(native)
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
