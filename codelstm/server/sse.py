"""Server-Sent Events for the streaming completion routes: the response class, the framing, and the merge
of several completions' event streams into one."""

from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator, Sequence

from starlette.requests import ClientDisconnect
from starlette.responses import StreamingResponse

DONE = "data: [DONE]\n\n"


def event(data: Any) -> str:
    """One SSE event carrying `data` as JSON (OpenAI's framing: a `data:` line and a blank line)."""
    return f"data: {json.dumps(data, separators=(',', ':'))}\n\n"  # ASCII: no U+2028 for line splitters


class EventStream(StreamingResponse):
    """text/event-stream without Starlette's own disconnect listener: the request's disconnect watcher
    (`CompletionService._submit`) must be the one receiver of the client's disconnect, so that a stream's
    client going away cancels the job, and is counted, exactly as a plain request's does."""

    media_type = "text/event-stream"

    def __init__(self, content: AsyncIterator[str]) -> None:
        super().__init__(content, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def __call__(self, scope, receive, send) -> None:
        try:
            await self.stream_response(send)
        except OSError:
            raise ClientDisconnect() from None


_END = object()


async def merge(streams: Sequence[AsyncIterator[Any]]) -> AsyncIterator[tuple[int, Any]]:
    """(index, item) from several async iterators as they come; the first error ends all of them."""
    queue: asyncio.Queue = asyncio.Queue()

    async def pump(i: int, stream: AsyncIterator[Any]) -> None:
        try:
            async for item in stream:
                queue.put_nowait((i, item, None))
            queue.put_nowait((i, _END, None))
        except Exception as e:  # noqa: BLE001 - handed to the consumer, which raises it
            queue.put_nowait((i, None, e))
        finally:
            await stream.aclose()  # its own cleanup (cancelling its job) now, not when collected

    tasks = [asyncio.ensure_future(pump(i, s)) for i, s in enumerate(streams)]
    try:
        left = len(tasks)
        while left:
            i, item, error = await queue.get()
            if error is not None:
                raise error
            if item is _END:
                left -= 1
            else:
                yield i, item
    finally:
        for task in tasks:
            task.cancel()
