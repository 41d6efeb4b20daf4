"""The HTTP API on a real server over loopback: contract, errors, cache and batching equivalence."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.conftest import running_server
from tests.server.conftest import ADMIN_KEY, API_KEY

PREFIX = "# module 7\n\ndef function_2(value):\n    return "


def test_complete_contract(client):
    r = client.post("/v1/complete", json={"prefix": PREFIX, "n": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] and body["model"]
    assert 1 <= len(body["completions"]) <= 3
    texts = [c["text"] for c in body["completions"]]
    assert len(set(texts)) == len(texts) and texts[0].startswith("value")
    for c in body["completions"]:
        assert c["finish_reason"] in ("stop", "length", "newline", "identifier_end") and c["logprob"] <= 0
    assert body["usage"]["prefix_chars"] == len(PREFIX)
    assert body["usage"]["fed_chars"] + body["usage"]["cached_chars"] == len(PREFIX)
    assert set(body["timing_ms"]) == {"queue", "compute", "total"}


def test_token_mode_and_empty_prefix(client):
    r = client.post("/v1/complete", json={"prefix": "def func", "mode": "token", "n": 5})
    assert r.status_code == 200 and r.json()["completions"][0]["text"].startswith("tion")
    r = client.post("/v1/complete", json={"prefix": "", "mode": "line"})
    assert r.status_code == 200 and r.json()["usage"]["prefix_chars"] == 0


@pytest.mark.parametrize("body", [
    {"prefix": "x", "n": 0}, {"prefix": "x", "n": 17}, {"prefix": "x", "mode": "word"}, {"prefix": "x", "max_chars": 0},
    {"prefix": "x", "max_chars": 513}, {"prefix": "x", "temperature": 0}, {"prefix": "x", "stop": ["a"] * 9},
    {"prefix": "x", "beam_width": 33}, {"suffix": "no prefix"}, {"prefix": 5},
])
def test_invalid_fields_are_422(client, body):
    r = client.post("/v1/complete", json=body)
    assert r.status_code == 422
    assert r.json()["error"]["type"] == "invalid_request" and "Traceback" not in r.text


# (field, value): the same rules on both endpoints; "\ud800" is a lone surrogate, legal in JSON, not in UTF-8
BAD_FIELDS = [("prefix", "def f\ud800"), ("suffix", "\udc00)"), ("stop", ["\ud800"]), ("stop", [""]),
              ("stop", ["x" * 65]), ("stop", ["a"] * 9), ("temperature", 1e-45), ("temperature", 11)]
OPENAI_NAMES = {"prefix": "prompt"}


@pytest.mark.parametrize("endpoint", ["/v1/complete", "/v1/completions"])
@pytest.mark.parametrize("field,value", BAD_FIELDS)
def test_bad_field_is_422_naming_it_on_both_endpoints(client, endpoint, field, value):
    name = OPENAI_NAMES.get(field, field) if endpoint == "/v1/completions" else field
    body = {"prefix": "def f(x):\n    return ", "prompt": "def f(x):\n    return ", name: value}
    r = client.post(endpoint, content=json.dumps(body), headers={"content-type": "application/json"})  # \ud800 escapes
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["message"].startswith(f"{name}")
    if endpoint == "/v1/completions":  # OpenAI's error shape there
        assert error["type"] == "invalid_request_error" and error["param"] == name
    else:
        assert error["type"] == "invalid_request"


def test_openai_single_stop_string_and_zero_temperature_are_accepted(client):
    r = client.post("/v1/completions", json={"prompt": PREFIX, "stop": ")", "temperature": 0, "max_tokens": 8})
    assert r.status_code == 200, r.text


def test_malformed_bodies(client):
    r = client.post("/v1/complete", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code in (400, 422) and "error" in r.json()
    r = client.post("/v1/complete", content=b'{"prefix": "\xff\xfe"}', headers={"content-type": "application/json"})
    assert r.status_code in (400, 422) and "error" in r.json()
    r = client.post("/v1/complete", content=b"\x00\x01binary", headers={"content-type": "application/json"})
    assert r.status_code in (400, 422) and "error" in r.json()


def test_body_limit_is_413(client):
    r = client.post("/v1/complete", json={"prefix": "x" * 70_000})
    assert r.status_code == 413 and r.json()["error"]["type"] == "payload_too_large"

    def chunks():
        for _ in range(20):
            yield b" " * 5000

    r = client.post("/v1/complete", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_auth(server):
    assert httpx.post(f"{server}/v1/complete", json={"prefix": "x"}).status_code == 401
    r = httpx.post(f"{server}/v1/complete", json={"prefix": "x"}, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.json()["error"]["type"] == "unauthorized"
    assert httpx.post(f"{server}/v1/complete", json={"prefix": "x"}, headers={"X-API-Key": API_KEY}).status_code == 200
    assert httpx.get(f"{server}/healthz").status_code == 200  # health needs no key


def test_model_info_health_and_metrics(client):
    info = client.get("/v1/model").json()
    assert info["vocabulary"] == "utf8-bytes" and info["parameters"] > 0 and info["training"]["steps"] == 300
    assert client.get("/readyz").json()["status"] == "ready"
    client.post("/v1/complete", json={"prefix": PREFIX, "document_id": "file:///m.py"})
    text = client.get("/metrics").text
    for name in ("codelstm_request_seconds_bucket", "codelstm_batch_size_bucket", "codelstm_queue_depth",
                 "codelstm_cache_hit_ratio", "codelstm_fed_chars_total", "codelstm_cached_chars_total"):
        assert name in text


def test_openai_style_completions(client):
    r = client.post("/v1/completions", json={"prompt": PREFIX, "max_tokens": 20, "n": 2, "stop": "\n"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "text_completion" and 1 <= len(body["choices"]) <= 2
    assert body["choices"][0]["text"].startswith("value")


def test_cache_resumes_and_gives_identical_results(client):
    doc = "# module 3\n\n" + "".join(f"def function_{j}(value):\n    return value + {j}\n\n" for j in range(12))
    uncached = client.post("/v1/complete", json={"prefix": doc + "def function_12(", "n": 3}).json()
    first = client.post("/v1/complete", json={"prefix": doc, "document_id": "doc-a", "n": 3}).json()
    assert first["usage"]["cached_chars"] == 0
    typed = client.post("/v1/complete", json={"prefix": doc + "def function_12(", "document_id": "doc-a", "n": 3}).json()
    assert typed["usage"]["cached_chars"] == len(doc)
    assert typed["usage"]["fed_chars"] == len("def function_12(")
    assert [c["text"] for c in typed["completions"]] == [c["text"] for c in uncached["completions"]]
    # an edit in the middle resumes at a checkpoint before it, not from the top
    edited = doc[:300] + "X" + doc[301:] + "def function_12("
    r = client.post("/v1/complete", json={"prefix": edited, "document_id": "doc-a", "n": 3}).json()
    assert 0 < r["usage"]["cached_chars"] <= 300


def test_concurrent_requests_are_batched_and_match_one_at_a_time(server):
    prefixes = [f"# module {i}\n\ndef function_{i % 5}(value):\n    return " for i in range(12)]
    headers = {"Authorization": f"Bearer {API_KEY}"}
    alone = [httpx.post(f"{server}/v1/complete", json={"prefix": p}, headers=headers, timeout=30).json() for p in prefixes]

    async def together():
        async with httpx.AsyncClient(base_url=server, headers=headers, timeout=30) as c:
            return await asyncio.gather(*[c.post("/v1/complete", json={"prefix": p}) for p in prefixes])

    results = [r.json() for r in asyncio.run(together())]
    for a, b in zip(alone, results):
        assert [c["text"] for c in a["completions"]] == [c["text"] for c in b["completions"]]
    metrics = httpx.get(f"{server}/metrics").text
    counts = {}
    for line in metrics.splitlines():
        if line.startswith("codelstm_batch_size_bucket"):
            le = line.split('le="')[1].split('"')[0]
            counts[le] = float(line.rsplit(" ", 1)[1])
    assert counts["+Inf"] > counts["1.0"], "no worker round ever advanced more than one request"


def test_overload_gives_503_with_retry_after(tiny_model):
    with running_server(tiny_model, max_queue="2", batch_window_ms="50") as url:
        async def flood():
            async with httpx.AsyncClient(base_url=url, timeout=60) as c:
                return await asyncio.gather(*[c.post("/v1/complete", json={"prefix": "def f", "max_chars": 200,
                                                                          "mode": "block"}) for _ in range(12)])
        responses = asyncio.run(flood())
        codes = [r.status_code for r in responses]
        assert 503 in codes and 200 in codes
        rejected = next(r for r in responses if r.status_code == 503)
        assert rejected.headers["Retry-After"] and rejected.json()["error"]["type"] == "overloaded"


def test_reload_under_load_drops_nothing(tiny_model, tmp_path):
    import shutil
    import time

    other = tmp_path / "other"
    shutil.copytree(tiny_model, other)
    with running_server(tiny_model, admin_key=ADMIN_KEY, models_dir=str(tmp_path)) as url:
        async def load_and_reload():
            reloaded, swapped = asyncio.Event(), [0.0]
            async with httpx.AsyncClient(base_url=url, timeout=60) as c:
                async def worker():
                    timed = []
                    while True:  # keep the load on until a request sent after the swap has been answered
                        sent = time.monotonic()
                        r = await c.post("/v1/complete", json={"prefix": PREFIX, "n": 8, "mode": "block",
                                                               "max_chars": 300})
                        timed.append((sent, time.monotonic(), r))
                        if reloaded.is_set() and sent > swapped[0]:
                            return timed

                async def reload():
                    await asyncio.sleep(0.3)
                    bad = await c.post("/v1/model/reload", json={"path": str(other)})
                    sent = time.monotonic()
                    ok = await c.post("/v1/model/reload", json={"path": str(other)},
                                      headers={"Authorization": f"Bearer {ADMIN_KEY}"})
                    window = (sent, time.monotonic())
                    swapped[0] = window[1]
                    reloaded.set()
                    broken = await c.post("/v1/model/reload", json={"path": str(tmp_path / "none")},
                                          headers={"Authorization": f"Bearer {ADMIN_KEY}"})
                    return bad, ok, window, broken

                *loads, (bad, ok, window, broken) = await asyncio.gather(*[worker() for _ in range(4)], reload())
                return [t for batch in loads for t in batch], bad, ok, window, broken

        timed, bad, ok, window, broken = asyncio.run(load_and_reload())
        responses = [r for _, _, r in timed]
        assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200]
        spanning = [r for sent, done, r in timed if sent < window[0] and done > window[1]]
        assert spanning, "no request was in flight for the whole reload: the test proved nothing"
        assert {r.json()["model"] for r in responses} == {tiny_model.name, "other"}  # both models answered
        assert bad.status_code == 401 and ok.status_code == 200 and ok.json()["path"] == str(other)
        assert broken.status_code == 400 and "no checkpoint folder 'none'" in broken.json()["error"]["message"]
        assert httpx.get(f"{url}/v1/model").json()["path"] == str(other)
