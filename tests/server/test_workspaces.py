"""Workspaces over HTTP on a real server: upload, inspect, remove, per-key isolation, limits, bad input."""

from __future__ import annotations

import httpx

from tests.server.conftest import ADMIN_KEY, API_KEY


def test_documents_are_uploaded_listed_and_removed(client):
    r = client.put("/v1/workspaces/proj-1/documents",
                   json={"documents": [{"path": "src/a.py", "text": "x = 1\n"}, {"path": "src/b.py", "text": "é\n"}]})
    assert r.status_code == 200, r.text
    assert r.json() == {"workspace_id": "proj-1", "documents": 2, "bytes": len("x = 1\n") + 1 + len("é\n".encode()) + 1}
    assert client.get("/v1/workspaces/proj-1").json()["documents"] == 2
    assert client.delete("/v1/workspaces/proj-1/documents", params={"path": "src/a.py"}).status_code == 204
    assert client.get("/v1/workspaces/proj-1").json()["documents"] == 1
    assert client.delete("/v1/workspaces/proj-1/documents", params={"path": "src/a.py"}).status_code == 404
    assert client.delete("/v1/workspaces/proj-1").status_code == 204
    missing = client.get("/v1/workspaces/proj-1")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"


def test_another_key_cannot_see_or_delete_a_workspace(server, client):
    client.put("/v1/workspaces/shared-name/documents", json={"documents": [{"path": "a.py", "text": "secret = 1\n"}]})
    with httpx.Client(base_url=server, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30) as other:
        assert other.get("/v1/workspaces/shared-name").status_code == 404
        assert other.delete("/v1/workspaces/shared-name").status_code == 404
    assert client.get("/v1/workspaces/shared-name").status_code == 200
    assert httpx.get(f"{server}/v1/workspaces/shared-name").status_code == 401  # no key at all


def test_bad_uploads_are_refused_with_the_field_named(client):
    cases = [
        {"documents": []},
        {"documents": [{"path": "", "text": "x"}]},
        {"documents": [{"path": "a.py"}]},
    ]
    lone_surrogate = '{"documents": [{"path": "a.py", "text": "x = \\ud800"}]}'  # JSON escapes a client sends
    for body in [*cases, lone_surrogate]:
        if isinstance(body, str):
            r = client.put("/v1/workspaces/w/documents", content=body, headers={"content-type": "application/json"})
        else:
            r = client.put("/v1/workspaces/w/documents", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["type"]
    assert client.put("/v1/workspaces/bad%20id/documents",
                      json={"documents": [{"path": "a.py", "text": "x"}]}).status_code == 422
    assert client.get("/v1/workspaces/w").status_code == 404  # nothing was stored by the refused uploads
