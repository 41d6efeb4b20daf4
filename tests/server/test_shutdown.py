"""SIGTERM drains a real server: new work gets 503 + Retry-After, /readyz 503, work in flight finishes
within the grace period, and what outlives it is answered 503, never 500."""

from __future__ import annotations

import asyncio
import signal

import httpx

from tests.conftest import server_process
from tests.server.conftest import big_document

DOC = big_document(900_000)  # seconds of reading even on an idle machine (the body limit is 1 MiB)


def _sigterm_during_a_long_read(url, proc, probe: bool = True):
    async def run():
        async with httpx.AsyncClient(base_url=url, timeout=60) as c:
            long = asyncio.create_task(c.post("/v1/complete", json={"prefix": DOC, "document_id": "long.py"}))
            await asyncio.sleep(0.7)
            assert not long.done(), "the read finished before SIGTERM: nothing was in flight"
            proc.send_signal(signal.SIGTERM)
            if not probe:
                return await long, None, None
            await asyncio.sleep(0.2)
            ready = await c.get("/readyz")
            new = await c.post("/v1/complete", json={"prefix": "def f"})
            return await long, ready, new
    return asyncio.run(run())


def test_sigterm_drains_and_finishes_work_in_flight(tiny_model):
    with server_process(tiny_model, shutdown_grace_s="30") as (url, proc):
        long, ready, new = _sigterm_during_a_long_read(url, proc)
        assert ready.status_code == 503 and "draining" in ready.json()["error"]["message"]
        assert new.status_code == 503 and new.json()["error"]["type"] == "shutting_down"
        assert new.headers["Retry-After"]
        assert long.status_code == 200, long.text
        proc.wait(timeout=15)  # then it exits by itself


def test_work_outliving_the_grace_period_is_503_not_500(tiny_model):
    with server_process(tiny_model, shutdown_grace_s="0.2") as (url, proc):
        long, _, _ = _sigterm_during_a_long_read(url, proc, probe=False)
        assert long.status_code == 503 and long.json()["error"]["type"] == "shutting_down", long.text
        assert long.headers["Retry-After"]
        proc.wait(timeout=15)
