"""Request logs of a real `codelstm serve --log-format json` on loopback: X-Request-ID in and out, one access
line per request with the completion's fields (also for errors), and the service's own INFO lines."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from pathlib import Path

import httpx
import pytest

from codelstm.paths import DEFAULT_MODEL
from codelstm.server.logs import ACCESS_FIELDS, RequestLog, note_request
from tests.conftest import server_process
from tests.server.conftest import big_document

DOC = big_document(30_000)  # a cold read of a few seconds for the bundled model on the 2-core VM


@pytest.fixture(scope="module")
def logged_server(tmp_path_factory):
    """The bundled model served with JSON logs at INFO into a file; yields (url, log file)."""
    log = tmp_path_factory.mktemp("logs") / "serve.log"
    with server_process(DEFAULT_MODEL, extra_args=("--log-level", "info", "--log-format", "json"),
                        output=log) as (url, _):
        yield url, log


def log_records(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def access_lines(log: Path, request_id: str, timeout: float = 10) -> list[dict]:
    """The access lines of one request (written just after its response: waits for them a moment)."""
    deadline = time.time() + timeout
    while True:
        found = [r for r in log_records(log) if r["logger"] == "codelstm.access" and r["request_id"] == request_id]
        if found or time.time() > deadline:
            return found
        time.sleep(0.05)


def fresh_id() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


def test_every_log_line_is_a_json_object_with_the_base_keys(logged_server):
    url, log = logged_server
    httpx.get(f"{url}/v1/model")
    records = log_records(log)  # json.loads fails the test on a line that is not JSON
    assert records
    assert all({"time", "level", "logger", "message", "request_id"} <= r.keys() for r in records)


def test_serving_line_is_logged_at_info(logged_server):
    _, log = logged_server
    serving = [r for r in log_records(log) if r["logger"] == "codelstm.server" and r["message"].startswith("serving ")]
    assert len(serving) == 1 and serving[0]["level"] == "INFO"
    assert "torch threads: 1" in serving[0]["message"]


def test_a_response_without_client_id_carries_a_fresh_one(logged_server):
    url, _ = logged_server
    first = httpx.get(f"{url}/healthz").headers.get("x-request-id")
    second = httpx.get(f"{url}/healthz").headers.get("x-request-id")
    assert first and second and first != second


def test_a_sane_client_request_id_is_echoed(logged_server):
    url, _ = logged_server
    rid = "client-trace_01:abc/42"
    assert httpx.get(f"{url}/v1/model", headers={"X-Request-ID": rid}).headers["x-request-id"] == rid


@pytest.mark.parametrize("bad", ["x" * 129, "has space", "new\tline", ""])
def test_an_unusable_client_request_id_is_replaced(logged_server, bad):
    url, _ = logged_server
    got = httpx.get(f"{url}/v1/model", headers={"X-Request-ID": bad}).headers["x-request-id"]
    assert got and got != bad and len(got) <= 128


def test_a_completion_gets_one_access_line_with_its_fields(logged_server):
    url, log = logged_server
    rid, doc = fresh_id(), f"file:///tmp/{uuid.uuid4().hex}.py"
    body = {"prefix": "import os\n\ndef main():\n    path = os.", "document_id": doc, "mode": "token", "n": 2}
    first = httpx.post(f"{url}/v1/complete", json=body, headers={"X-Request-ID": rid}, timeout=60)
    assert first.status_code == 200 and first.headers["x-request-id"] == rid
    [line] = access_lines(log, rid)
    assert list(line)[:5] == ["time", "level", "logger", "message", "request_id"]
    assert set(ACCESS_FIELDS) <= line.keys()
    usage, timing = first.json()["usage"], first.json()["timing_ms"]
    assert (line["method"], line["path"], line["status"], line["level"]) == ("POST", "/v1/complete", 200, "INFO")
    assert (line["document"], line["mode"]) == (doc, "token")
    assert (line["fed_bytes"], line["cached_bytes"]) == (usage["fed_chars"], usage["cached_chars"])
    assert line["queue_ms"] == pytest.approx(timing["queue"], abs=0.01)
    assert line["compute_ms"] == pytest.approx(timing["compute"], abs=0.01)
    assert line["duration_ms"] >= line["compute_ms"]

    rid2 = fresh_id()
    second = httpx.post(f"{url}/v1/complete", json={**body, "prefix": body["prefix"] + "path"},
                        headers={"X-Request-ID": rid2}, timeout=60)
    [line2] = access_lines(log, rid2)
    assert line2["cached_bytes"] == second.json()["usage"]["cached_chars"] > 0


def test_the_openai_endpoint_gets_an_access_line_with_its_mode(logged_server):
    url, log = logged_server
    rid = fresh_id()
    r = httpx.post(f"{url}/v1/completions", json={"prompt": "def f(x):\n    return", "max_tokens": 8},
                   headers={"X-Request-ID": rid}, timeout=60)
    assert r.status_code == 200
    [line] = access_lines(log, rid)
    assert (line["path"], line["status"], line["mode"], line["document"]) == ("/v1/completions", 200, "line", None)
    assert line["fed_bytes"] > 0


@pytest.mark.parametrize("method, path, body, status", [
    ("POST", "/v1/complete", {"prefix": "x", "mode": "sentence"}, 422),
    ("POST", "/v1/complete", {"prefix": "x", "max_chars": 100000}, 422),
    ("GET", "/v1/no-such-endpoint", None, 404),
    ("POST", "/v1/complete", {"prefix": "x" * 2_000_000}, 413),
])
def test_a_failed_request_gets_an_access_line_with_its_status(logged_server, method, path, body, status):
    url, log = logged_server
    rid = fresh_id()
    r = httpx.request(method, f"{url}{path}", json=body, headers={"X-Request-ID": rid}, timeout=60)
    assert r.status_code == status and r.headers["x-request-id"] == rid
    [line] = access_lines(log, rid)
    assert (line["status"], line["path"]) == (status, path)
    assert line["fed_bytes"] is None and line["compute_ms"] is None  # the service never ran


def test_health_probes_are_not_logged_at_info(logged_server):
    url, log = logged_server
    rid = fresh_id()
    assert httpx.get(f"{url}/readyz", headers={"X-Request-ID": rid}).status_code == 200
    marker = fresh_id()
    httpx.get(f"{url}/v1/model", headers={"X-Request-ID": marker})
    assert access_lines(log, marker)  # lines written after the probe's are there
    assert access_lines(log, rid, timeout=0) == []


def test_a_superseded_request_gets_a_409_line_with_its_document_and_mode(logged_server):
    url, log = logged_server
    doc, older_id, newer_id = f"file:///{uuid.uuid4().hex}.py", fresh_id(), fresh_id()

    async def run():
        async with httpx.AsyncClient(base_url=url, timeout=60) as c:
            older = asyncio.create_task(c.post("/v1/complete", json={"prefix": DOC, "document_id": doc},
                                               headers={"X-Request-ID": older_id}))
            await asyncio.sleep(0.5)
            newer = await c.post("/v1/complete", json={"prefix": DOC + "v", "document_id": doc},
                                 headers={"X-Request-ID": newer_id})
            return await older, newer

    older, newer = asyncio.run(run())
    assert (older.status_code, newer.status_code) == (409, 200)
    [line] = access_lines(log, older_id)
    assert (line["status"], line["document"], line["mode"], line["fed_bytes"]) == (409, doc, "line", None)
    assert access_lines(log, newer_id)[0]["status"] == 200


def test_a_client_that_goes_away_gets_a_499_line(logged_server):
    url, log = logged_server
    rid = fresh_id()
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{url}/v1/complete", json={"prefix": DOC, "document_id": f"file:///{rid}.py"},
                   headers={"X-Request-ID": rid}, timeout=0.5)
    [line] = access_lines(log, rid)
    assert (line["status"], line["mode"]) == (499, "line")


def test_streamed_chunks_pass_the_middleware_one_by_one_and_are_logged_at_the_end(caplog):
    """RequestLog forwards each body chunk as it is sent (SSE must not be buffered) and writes the access line
    once the last one is out, with what the handler noted along the way."""
    release = asyncio.Event()
    sent: list[dict] = []

    async def streaming_app(scope, receive, send):
        note_request(mode="block", document="doc")
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        await release.wait()
        note_request(fed_bytes=5, cached_bytes=0, queue_ms=1.0, compute_ms=2.0)
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})

    async def record(message):
        sent.append(message)

    async def run():
        scope = {"type": "http", "method": "POST", "path": "/v1/completions", "headers": [(b"x-request-id", b"s-1")],
                 "client": ("127.0.0.1", 5)}
        task = asyncio.create_task(RequestLog(streaming_app)(scope, None, record))
        while len(sent) < 2:
            await asyncio.sleep(0.01)
        first_chunk_seen_early = [m.get("body") for m in sent] == [None, b"data: 1\n\n"]
        no_line_yet = not [r for r in caplog.records if r.name == "codelstm.access"]
        release.set()
        await task
        return first_chunk_seen_early, no_line_yet

    caplog.set_level(logging.INFO, logger="codelstm.access")
    first_chunk_seen_early, no_line_yet = asyncio.run(asyncio.wait_for(run(), 10))
    assert first_chunk_seen_early and no_line_yet
    assert (b"x-request-id", b"s-1") in sent[0]["headers"]
    [line] = [r for r in caplog.records if r.name == "codelstm.access"]
    assert {k: line.fields[k] for k in ("request_id", "status", "mode", "document", "fed_bytes", "compute_ms")} == \
        {"request_id": "s-1", "status": 200, "mode": "block", "document": "doc", "fed_bytes": 5, "compute_ms": 2.0}
