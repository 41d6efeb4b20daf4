"""The OpenAI-style dialect on a real `codelstm serve`, checked with the official `openai` client (what editor
plugins and gateways speak) and with raw httpx for the Server-Sent Events framing."""

from __future__ import annotations

import json
import time
from collections import defaultdict

import httpx
import openai
import pytest

from tests.conftest import running_server
from tests.server.conftest import API_KEY, metric

PREFIX = "# module 7\n\ndef function_2(value):\n    return "
BLOCK = "# module 7\n\n"  # a block completion: whole functions, several beam steps apart
AUTH = {"Authorization": f"Bearer {API_KEY}"}
DOC = "# module 3\n\n" + "".join(f"def function_{j}(value):\n    return value + {j}\n\n" for j in range(12))


@pytest.fixture
def oai(server):
    with openai.OpenAI(base_url=f"{server}/v1", api_key=API_KEY, max_retries=0, timeout=60) as client:
        yield client


def streamed(oai, **kwargs) -> tuple[dict[int, str], dict[int, str], int]:
    """Per choice index: the concatenated text and the finish_reason; and how many chunks carried text."""
    texts: dict[int, str] = defaultdict(str)
    finish: dict[int, str] = {}
    with_text = 0
    for chunk in oai.completions.create(stream=True, **kwargs):
        assert chunk.object == "text_completion"
        for c in chunk.choices:
            texts[c.index] += c.text
            with_text += bool(c.text)
            if c.finish_reason is not None:
                finish[c.index] = c.finish_reason
    return dict(texts), finish, with_text


def test_models_list_and_retrieve(oai, client):
    name = client.get("/v1/model").json()["name"]
    models = oai.models.list().data
    assert [m.id for m in models] == [name] and models[0].owned_by == "codelstm"
    assert oai.models.retrieve(name).id == name
    with pytest.raises(openai.NotFoundError) as e:
        oai.models.retrieve("gpt-4o")
    assert e.value.body["code"] == "model_not_found" and e.value.body["param"] == "model"


def test_completion_at_temperature_0_is_the_beam_search_result(oai, client):
    r = oai.completions.create(model="any-name", prompt=PREFIX, max_tokens=20, temperature=0, stop="\n")
    assert r.object == "text_completion" and [c.index for c in r.choices] == [0]
    assert r.choices[0].text.startswith("value") and r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens == len(PREFIX.encode()) and r.usage.completion_tokens == len(r.choices[0].text.encode())
    native = client.post("/v1/complete", json={"prefix": PREFIX, "n": 1, "max_chars": 20, "stop": ["\n"]}).json()
    assert r.choices[0].text == native["completions"][0]["text"]
    assert oai.completions.create(model="m", prompt=PREFIX, max_tokens=20, stop="\n").choices[0].text == r.choices[0].text
    # a max_tokens past the service's longest completion is served as that longest completion
    assert oai.completions.create(model="m", prompt=BLOCK, max_tokens=4096, temperature=0).choices[0].finish_reason


def test_list_prompts_number_choices_prompt_major_and_echo_prepends_the_prompt(oai):
    prompts = [PREFIX, "def function_4(value):\n    return value + "]
    r = oai.completions.create(model="m", prompt=prompts, n=2, max_tokens=16, temperature=0, suffix="\n")
    assert [c.index for c in r.choices] == [0, 1, 2, 3]
    for i, prompt in enumerate(prompts):
        alone = oai.completions.create(model="m", prompt=prompt, n=2, max_tokens=16, temperature=0, suffix="\n")
        assert [c.text for c in r.choices[2 * i:2 * i + 2]] == [c.text for c in alone.choices]
    echoed = oai.completions.create(model="m", prompt=PREFIX, max_tokens=16, temperature=0, echo=True, stop="\n")
    assert echoed.choices[0].text == PREFIX + r.choices[0].text.split("\n")[0]


@pytest.mark.parametrize("kwargs", [
    {"prompt": BLOCK, "max_tokens": 300, "temperature": 0},
    {"prompt": BLOCK, "max_tokens": 300, "temperature": 0, "n": 3},
    {"prompt": PREFIX, "max_tokens": 40, "temperature": 0, "stop": ["+ ", "):"]},
    {"prompt": [BLOCK, PREFIX], "max_tokens": 200, "temperature": 0, "n": 2, "echo": True},
    {"prompt": BLOCK, "max_tokens": 120, "temperature": 0.8, "seed": 7},
], ids=["block", "block-n3", "stops", "two-prompts-echo", "sampled-seed"])
def test_streamed_chunks_concatenate_to_the_non_streamed_text(oai, kwargs):
    whole = oai.completions.create(model="m", **kwargs)
    texts, finish, _ = streamed(oai, model="m", **kwargs)
    assert texts == {c.index: c.text for c in whole.choices}
    assert finish == {c.index: c.finish_reason for c in whole.choices}


def test_a_block_completion_streams_in_several_chunks(oai):
    texts, finish, with_text = streamed(oai, model="m", prompt=BLOCK, max_tokens=300, temperature=0)
    assert with_text >= 3 and finish == {0: "stop"} and len(texts[0]) > 20


def sse_events(response: httpx.Response) -> list[tuple[int, str]]:
    """(network read number, data) of each event, checking the framing: `data:` lines, a blank line after each."""
    buffer, events = "", []
    for read, part in enumerate(response.iter_text()):
        buffer += part
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            assert block.startswith("data: ") and "\n" not in block, block
            events.append((read, block.removeprefix("data: ")))
    assert buffer == ""
    return events


def test_sse_framing_done_last_and_first_text_sent_before_the_end(server):
    body = {"prompt": BLOCK, "max_tokens": 300, "stream": True, "stream_options": {"include_usage": True}}
    ok, generated = metric(server, "codelstm_requests_total", 'outcome="ok"'), metric(server, "codelstm_generated_chars_total")
    with httpx.stream("POST", f"{server}/v1/completions", json=body, headers=AUTH, timeout=60) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r)
    assert events[-1][1] == "[DONE]" and all(data != "[DONE]" for _, data in events[:-1])
    chunks = [(read, json.loads(data)) for read, data in events[:-1]]
    assert len({c["id"] for _, c in chunks}) == 1
    usage = chunks[-1][1]
    assert usage["choices"] == [] and usage["usage"]["prompt_tokens"] == len(BLOCK)
    # a streamed completion counts as a plain one
    assert metric(server, "codelstm_requests_total", 'outcome="ok"') == ok + 1
    assert metric(server, "codelstm_generated_chars_total") - generated == usage["usage"]["completion_tokens"] > 0
    final = next(i for i, (_, c) in enumerate(chunks) if c["choices"] and c["choices"][0]["finish_reason"])
    early = [read for read, c in chunks[:final] if c["choices"][0]["text"]]
    assert len(early) >= 2, "the text was not sent before the search ended"
    assert early[0] < chunks[final][0], "the first text arrived with the end, not before it"


def test_native_complete_streams_block_mode_too(client, server):
    body = {"prefix": BLOCK, "mode": "block", "max_chars": 300, "n": 2}
    whole = client.post("/v1/complete", json=body).json()
    with httpx.stream("POST", f"{server}/v1/complete", json={**body, "stream": True}, headers=AUTH, timeout=60) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r)
    assert events[-1][1] == "[DONE]"
    chunks = [json.loads(data) for _, data in events[:-1]]
    texts: dict[int, str] = defaultdict(str)
    for chunk in chunks:
        for c in chunk["completions"]:
            texts[c["index"]] += c["text"]
    assert len(chunks) >= 3 and dict(texts) == {i: c["text"] for i, c in enumerate(whole["completions"])}
    last = chunks[-1]
    assert [c["finish_reason"] for c in last["completions"]] == [c["finish_reason"] for c in whole["completions"]]
    assert last["usage"]["prefix_chars"] == len(BLOCK) and set(last["timing_ms"]) == {"queue", "compute", "total"}


def test_document_header_or_user_resumes_the_state_cache(oai, server):
    for name, how in [("file:///header.py", "header"), ("file:///user.py", "user")]:
        extra = {"extra_headers": {"X-Codelstm-Document": name}} if how == "header" else {"user": name}
        first = oai.completions.create(model="m", prompt=DOC, max_tokens=16, temperature=0, **extra)
        assert first.usage.prompt_tokens_details.cached_tokens == 0
        before = metric(server, "codelstm_cached_chars_total")
        typed = oai.completions.create(model="m", prompt=DOC + "def function_12(", max_tokens=16, temperature=0, **extra)
        assert typed.usage.prompt_tokens_details.cached_tokens == len(DOC)  # paid only for the new bytes
        assert metric(server, "codelstm_cached_chars_total") - before == len(DOC)
    cold = oai.completions.create(model="m", prompt=DOC + "def function_12(", max_tokens=16, temperature=0)
    assert cold.usage.prompt_tokens_details.cached_tokens == 0 and cold.choices[0].text == typed.choices[0].text


def test_errors_are_openai_shaped_with_the_field_named(oai, server):
    with pytest.raises(openai.UnprocessableEntityError) as e:
        oai.completions.create(model="m", prompt="x", stop=["a"] * 9)
    assert e.value.body["param"] == "stop" and e.value.body["message"].startswith("stop")
    assert e.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as e:
        oai.completions.create(model="m", prompt="x", logprobs=1)
    assert e.value.body["param"] == "logprobs" and "not supported" in e.value.body["message"]
    with openai.OpenAI(base_url=f"{server}/v1", api_key="wrong", max_retries=0) as stranger:
        with pytest.raises(openai.AuthenticationError) as e:
            stranger.completions.create(model="m", prompt="x")
        assert e.value.body["code"] == "invalid_api_key"
        with pytest.raises(openai.AuthenticationError):
            stranger.models.list()
    r = httpx.post(f"{server}/v1/completions", content=b"{not json", headers={**AUTH, "content-type": "application/json"})
    assert 400 <= r.status_code < 500 and set(r.json()["error"]) == {"message", "type", "param", "code"}
    r = httpx.post(f"{server}/v1/completions", json={"prompt": [1, 2]}, headers=AUTH)
    assert r.status_code == 422 and r.json()["error"]["param"] == "prompt"
    r = httpx.post(f"{server}/v1/completions", json={"prompt": "x"}, headers={**AUTH, "X-Codelstm-Document": "d" * 2001})
    assert r.status_code == 422 and r.json()["error"]["param"].lower() == "x-codelstm-document"
    r = httpx.post(f"{server}/v1/complete", json={"prefix": 5}, headers=AUTH)  # the native routes keep their shape
    assert r.status_code == 422 and set(r.json()["error"]) == {"type", "message"}


LONG = {"prompt": BLOCK, "max_tokens": 512, "temperature": 10, "seed": 1, "mode": "block", "stream": True}
"""A stream that runs for hundreds of steps: near-uniform sampling rarely ends a block before 512 bytes,
and with n = 1 every drawn byte is sent at once."""


def test_mid_stream_error_is_an_event_then_done_and_a_disconnect_cancels_the_job(tiny_model):
    with running_server(tiny_model, max_queue="1") as url, \
            openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0) as oai:
        oai.models.list()  # connected and warm: the request below leaves at once
        # the queue holds one request: a second one while a stream runs is 503, in OpenAI's shape
        with httpx.stream("POST", f"{url}/v1/completions", json=LONG, timeout=60) as r:
            lines = r.iter_lines()  # kept: a collected line iterator closes the connection
            next(lines)
            with pytest.raises(openai.InternalServerError) as e:
                oai.completions.create(model="m", prompt="x")
            assert e.value.status_code == 503 and e.value.body["code"] == "overloaded"
            assert e.value.response.headers["Retry-After"]
        # a newer request for the same document supersedes a stream after it started: an error event, then [DONE]
        headers = {"X-Codelstm-Document": "file:///a.py"}
        with httpx.stream("POST", f"{url}/v1/completions", json=LONG, headers=headers, timeout=60) as r:
            lines = r.iter_lines()
            first = next(lines)
            assert first.startswith("data: ") and json.loads(first[6:])["choices"][0]["text"]
            newer = httpx.post(f"{url}/v1/completions", json={"prompt": BLOCK + "d"}, headers=headers, timeout=60)
            events = [line[6:] for line in lines if line]
        assert newer.status_code == 200
        assert events[-1] == "[DONE]" and json.loads(events[-2])["error"]["code"] == "superseded"
        # a client that goes away mid-stream cancels its job, counted as the plain requests' are
        cancelled = metric(url, "codelstm_requests_total", 'outcome="cancelled"')
        with httpx.stream("POST", f"{url}/v1/completions", json=LONG, timeout=60) as r:
            next(r.iter_lines())
        deadline = time.monotonic() + 5
        while metric(url, "codelstm_requests_total", 'outcome="cancelled"') == cancelled and time.monotonic() < deadline:
            time.sleep(0.05)
        assert metric(url, "codelstm_requests_total", 'outcome="cancelled"') == cancelled + 1
        assert httpx.post(f"{url}/v1/completions", json={"prompt": "x"}, timeout=30).status_code == 200
