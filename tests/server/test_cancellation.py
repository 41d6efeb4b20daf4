"""Server-side cancellation on a real server: a client that goes away frees its slot, and a newer request
for the same document (and key) supersedes the older one, which answers 409 at once."""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.conftest import running_server
from tests.server.conftest import big_document, metric

DOC = big_document(400_000)  # a cold read of several seconds for the tiny model


def test_disconnect_cancels_the_job_and_frees_its_queue_slot(tiny_model):
    with running_server(tiny_model, max_queue="1") as url:
        t0 = time.monotonic()
        try:
            httpx.post(f"{url}/v1/complete", json={"prefix": DOC, "document_id": "gone.py"}, timeout=0.5)
            raise AssertionError("the long read finished before the client gave up: nothing was cancelled")
        except httpx.ReadTimeout:
            pass
        deadline = time.monotonic() + 5
        while metric(url, "codelstm_requests_total", 'outcome="cancelled"') < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert metric(url, "codelstm_requests_total", 'outcome="cancelled"') == 1
        # max_queue is 1: this is answered only because the abandoned read no longer holds the slot
        r = httpx.post(f"{url}/v1/complete", json={"prefix": "def f"}, timeout=30)
        assert r.status_code == 200, r.text
        assert time.monotonic() - t0 < 3.0, "the slot was freed only when the abandoned read finished"


def _auth(key: str | None) -> dict:
    return {"Authorization": f"Bearer {key}"} if key else {}


def _two_requests(url: str, first: dict, second: dict, first_key: str | None, second_key: str | None):
    async def run():
        async with httpx.AsyncClient(base_url=url, timeout=60) as c:
            older = asyncio.create_task(c.post("/v1/complete", json=first, headers=_auth(first_key)))
            await asyncio.sleep(0.5)
            newer = await c.post("/v1/complete", json=second, headers=_auth(second_key))
            return await older, newer
    return asyncio.run(run())


def test_newer_request_for_the_same_document_supersedes_the_older(tiny_model):
    with running_server(tiny_model, api_keys="alice,bob") as url:
        first = {"prefix": DOC, "document_id": "file:///a.py"}
        typed = {"prefix": DOC + "v", "document_id": "file:///a.py"}
        older, newer = _two_requests(url, first, typed, "alice", "alice")
        assert older.status_code == 409 and older.json()["error"]["type"] == "superseded"
        assert newer.status_code == 200, newer.text
        assert newer.json()["usage"]["cached_chars"] > 0  # resumed where the superseded read stopped
        headers = {"Authorization": "Bearer alice"}
        assert metric(url, "codelstm_requests_total", 'outcome="superseded"') == 1
        # another key's document of the same name is another user's: it supersedes nothing
        other = {"prefix": DOC, "document_id": "file:///b.py"}
        older, newer = _two_requests(url, other, {**other, "prefix": "x"}, "alice", "bob")
        assert older.status_code == 200 and newer.status_code == 200
        assert httpx.get(f"{url}/v1/model", headers=headers).status_code == 200


def test_supersession_can_be_turned_off(tiny_model):
    with running_server(tiny_model, supersede="false") as url:
        doc = {"prefix": DOC[:150_000], "document_id": "file:///c.py"}
        older, newer = _two_requests(url, doc, {**doc, "prefix": doc["prefix"] + "v"}, None, None)
        assert older.status_code == 200 and newer.status_code == 200
        assert metric(url, "codelstm_requests_total", 'outcome="superseded"') == 0
