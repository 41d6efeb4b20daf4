"""The native completion endpoint /v1/complete (the OpenAI-style dialect is in routers/openai.py)."""

from __future__ import annotations

import uuid
from typing import AsyncIterator

from fastapi import APIRouter, Request

from codelstm.model.generate import Progress
from codelstm.server.deps import ApiKey, ServiceDep, client_key
from codelstm.server.errors import APIError
from codelstm.server.schemas import CompleteRequest, CompleteResponse
from codelstm.server.sse import DONE, EventStream, event

router = APIRouter(prefix="/v1", tags=["completion"], dependencies=[ApiKey])


async def disconnected(request: Request) -> None:
    """Resolves when the client closes the connection (the body is read: only the disconnect is left)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


@router.post("/complete", response_model=CompleteResponse)
async def complete(body: CompleteRequest, request: Request, service: ServiceDep):
    """Complete the text before the cursor; with `stream: true`, as Server-Sent Events (docs/api.md)."""
    if not body.stream:
        return await service.complete(body, client_key(request), disconnected(request))
    events = service.stream(body, client_key(request), disconnected(request))
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
