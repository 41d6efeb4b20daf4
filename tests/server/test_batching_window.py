"""The batch window: a request that finds the worker idle waits for company only while clients have lately
come together, so a lone typist never waits for nobody, and a burst after concurrent traffic still batches."""

from __future__ import annotations

import asyncio

from codelstm.model.engine import EngineRequest
from codelstm.model.generate import SearchSpec
from codelstm.server.batcher import COMPANY_MEMORY_S, Batcher

WINDOW_S = 0.4  # far longer than a tiny model's token completion, so a wait shows in queue_ms
REQUEST = EngineRequest(b"def func", SearchSpec(mode="token", n=2, max_chars=8))


def test_a_lone_request_does_not_wait_the_window_but_one_after_concurrent_traffic_does(engine):
    """`engine`: tests/server/conftest.py, as the server builds it."""
    async def scenario():
        batcher = Batcher(engine, window_s=WINDOW_S)
        batcher.start()
        try:
            lone = [await batcher.submit(REQUEST, 30) for _ in range(3)]  # one client: never any company
            together = await asyncio.gather(*[batcher.submit(REQUEST, 30) for _ in range(3)])
            after = await batcher.submit(REQUEST, 30)  # alone, but within a second of a shared round
            await asyncio.sleep(COMPANY_MEMORY_S + 0.2)
            later = await batcher.submit(REQUEST, 30)  # that traffic is over: no wait
            return lone, together, after, later
        finally:
            batcher.stop()

    lone, together, after, later = asyncio.run(scenario())
    assert all(o.queue_ms < WINDOW_S * 1000 / 2 for o in lone), [o.queue_ms for o in lone]
    assert all(o.result.completions for o in together)
    assert after.queue_ms >= WINDOW_S * 1000 * 0.9, after.queue_ms
    assert later.queue_ms < WINDOW_S * 1000 / 2, later.queue_ms
