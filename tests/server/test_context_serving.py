"""Context models in the served completions (issue 12, SPEC sections 5 and 8), on a real server on loopback
serving the bundled model (it ships a mixer.json): a name only the workspace or the document so far knows
is completed with context and not without; workspaces are per key; a missing one is reported, not an error."""

from __future__ import annotations

import httpx
import pytest

from codelstm.paths import DEFAULT_MODEL
from tests.conftest import running_server

KEY_A, KEY_B = "key-a", "key-b"
NAME_REST = "idget_count"  # frobnicate_w + this: a name the model never saw
WORKSPACE_DOC = ("def frobnicate_widget_count(widgets, scale):\n    return len(widgets) * scale\n\n\n"
                 "print(frobnicate_widget_count([1, 2], 3))\ntotal = frobnicate_widget_count(items, 2)\n"
                 "assert frobnicate_widget_count([], 1) == 0\n")
PREFIX = "import os\n\nx = frobnicate_w"
FILLER = "".join(f"def helper_{i}(value):\n    return value + {i}\n\n" for i in range(40))
DOCUMENT_PREFIX = ("def frobnicate_widget_count(widgets, scale):\n    return len(widgets) * scale\n\n\n"
                   + FILLER + "x = frobnicate_w")


@pytest.fixture(scope="module")
def server():
    with running_server(DEFAULT_MODEL, api_keys=f"{KEY_A},{KEY_B}") as url:
        yield url


def client_for(url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60)


@pytest.fixture(scope="module")
def workspace(server):
    """A workspace of KEY_A's that defines and uses frobnicate_widget_count."""
    with client_for(server, KEY_A) as c:
        r = c.put("/v1/workspaces/proj/documents", json={"documents": [{"path": "widgets.py", "text": WORKSPACE_DOC}]})
        assert r.status_code == 200, r.text
    return "proj"


def complete(url: str, key: str, prefix: str, mode: str, headers: dict | None = None, **fields) -> dict:
    with client_for(url, key) as c:
        r = c.post("/v1/complete", json={"prefix": prefix, "mode": mode, "n": 3, "max_chars": 32, **fields},
                   headers=headers or {})
    assert r.status_code == 200, r.text
    return r.json()


def texts(body: dict) -> list[str]:
    return [c["text"] for c in body["completions"]]


@pytest.mark.parametrize("mode", ["token", "line"])
def test_a_workspace_name_is_completed_with_the_workspace_and_not_without(server, workspace, mode):
    with_ws = complete(server, KEY_A, PREFIX, mode, workspace_id=workspace)
    assert any(t.startswith(NAME_REST) for t in texts(with_ws)), texts(with_ws)
    assert with_ws["usage"]["workspace"] == "used" and with_ws["usage"]["context"] == "workspace"
    without = complete(server, KEY_A, PREFIX, mode)
    assert not any(NAME_REST in t for t in texts(without)), texts(without)
    assert without["usage"]["workspace"] == "none" and without["usage"]["context"] == "document"


def test_the_workspace_header_names_the_workspace_too(server, workspace):
    body = complete(server, KEY_A, PREFIX, "token", headers={"X-Codelstm-Workspace": workspace})
    assert body["usage"]["workspace"] == "used"
    assert any(t.startswith(NAME_REST) for t in texts(body)), texts(body)


def test_an_unknown_workspace_is_answered_from_the_document_and_reported_missing(server, workspace):
    body = complete(server, KEY_A, PREFIX, "token", workspace_id="never-uploaded")
    assert body["usage"]["workspace"] == "missing" and body["usage"]["context"] == "document"
    assert body["completions"] and not any(NAME_REST in t for t in texts(body)), texts(body)


def test_another_key_cannot_use_the_workspace(server, workspace):
    body = complete(server, KEY_B, PREFIX, "token", workspace_id=workspace)
    assert body["usage"]["workspace"] == "missing"
    assert not any(NAME_REST in t for t in texts(body)), texts(body)


def test_bad_or_conflicting_workspace_ids_are_refused(server, workspace):
    with client_for(server, KEY_A) as c:
        bad_field = c.post("/v1/complete", json={"prefix": PREFIX, "workspace_id": "has space"})
        bad_header = c.post("/v1/complete", json={"prefix": PREFIX}, headers={"X-Codelstm-Workspace": "a b"})
        conflict = c.post("/v1/complete", json={"prefix": PREFIX, "workspace_id": "one"},
                          headers={"X-Codelstm-Workspace": "two"})
    for r in (bad_field, bad_header, conflict):
        assert r.status_code == 422, r.text
        assert r.json()["error"]["type"] == "invalid_request"


def test_a_name_defined_earlier_in_the_document_is_completed_with_document_context(server):
    body = complete(server, KEY_A, DOCUMENT_PREFIX[:-1], "token", document_id="file:///doc.py")
    assert body["usage"]["context"] == "document"
    assert any(t.startswith("w" + NAME_REST) for t in texts(body)), texts(body)
    # typing on: the document's cached context index covers the start, the new byte is looked up directly
    body = complete(server, KEY_A, DOCUMENT_PREFIX, "token", document_id="file:///doc.py")
    assert body["usage"]["cached_chars"] == len(DOCUMENT_PREFIX) - 1
    assert any(t.startswith(NAME_REST) for t in texts(body)), texts(body)


@pytest.fixture(scope="module")
def plain_server():
    """The same model with the context models off (CODELSTM_CONTEXT=none): the LSTM alone."""
    with running_server(DEFAULT_MODEL, api_keys=KEY_A, context="none") as url:
        yield url


def test_without_context_models_neither_name_is_completed(plain_server):
    with client_for(plain_server, KEY_A) as c:
        c.put("/v1/workspaces/proj/documents", json={"documents": [{"path": "w.py", "text": WORKSPACE_DOC}]})
    body = complete(plain_server, KEY_A, PREFIX, "token", workspace_id="proj")
    assert body["usage"] == {**body["usage"], "context": "none", "workspace": "disabled"}
    assert not any(NAME_REST in t for t in texts(body)), texts(body)
    body = complete(plain_server, KEY_A, DOCUMENT_PREFIX, "token", document_id="file:///doc.py")
    assert not any(NAME_REST in t for t in texts(body)), texts(body)


def test_a_reloaded_model_brings_its_mixer_and_one_without_serves_the_lstm_alone(tmp_path):
    import shutil

    with_mixer, without = tmp_path / "with-mixer", tmp_path / "without"
    shutil.copytree(DEFAULT_MODEL, with_mixer)
    shutil.copytree(DEFAULT_MODEL, without, ignore=shutil.ignore_patterns("mixer.json"))
    admin = {"Authorization": "Bearer admin"}
    with running_server(without, admin_key="admin", models_dir=str(tmp_path)) as url:
        def usage() -> dict:
            r = httpx.post(f"{url}/v1/complete", json={"prefix": PREFIX, "mode": "token"}, timeout=60)
            assert r.status_code == 200, r.text
            return r.json()["usage"]

        assert usage()["context"] == "none"
        assert httpx.post(f"{url}/v1/model/reload", json={"path": "with-mixer"}, headers=admin,
                          timeout=60).status_code == 200
        assert usage()["context"] == "document"
        assert httpx.post(f"{url}/v1/model/reload", json={"path": "without"}, headers=admin,
                          timeout=60).status_code == 200
        assert usage()["context"] == "none"


def test_context_setting_that_needs_a_mixer_refuses_a_model_without_one(tmp_path, monkeypatch):
    import shutil

    from tests.conftest import run_cli

    without = tmp_path / "without"
    shutil.copytree(DEFAULT_MODEL, without, ignore=shutil.ignore_patterns("mixer.json"))
    monkeypatch.setenv("CODELSTM_CONTEXT", "document")
    result = run_cli("serve", "--model", str(without), timeout=120)
    assert result.returncode != 0
    assert "CODELSTM_CONTEXT=document needs a mixer.json" in result.stderr
