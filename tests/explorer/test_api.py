"""The explorer's HTTP API on a real server: values from the real model, limits and clear 4xx errors."""

from __future__ import annotations

import httpx
import pytest
import torch

from codelstm.model import ByteLM, ModelConfig, load_checkpoint, save_checkpoint
from codelstm.model.activations import trace
from codelstm.paths import DEFAULT_MODEL
from tests.conftest import running_server
from tests.explorer.conftest import ADMIN_KEY, MAX_CHARS, PYTHON_FILE

CODE = "def f(x):\n\tif x:  # é\n\t\treturn [x, 'a']\n"


def test_page_and_its_files_are_served_without_a_key(server):
    r = httpx.get(f"{server}/explore")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "neuron explorer" in r.text and "http" not in r.text.replace("http-equiv", "")  # no CDN, no outside URL
    for name, kind in (("explore.js", "javascript"), ("explore.css", "text/css")):
        r = httpx.get(f"{server}/explore/static/{name}")
        assert r.status_code == 200 and kind in r.headers["content-type"]
    assert httpx.get(f"{server}/explore/static/nope.js").status_code == 404


def test_activations_are_the_models(client):
    """Every value equals a local trace of the same checkpoint (rounded to the 4 decimals the API sends)."""
    r = client.post("/v1/activations", json={"text": CODE, "layer": 1, "neurons": [0, 250, 383]})
    assert r.status_code == 200, r.text
    body = r.json()
    data = CODE.encode()
    assert body["bytes"] == len(data) and body["neurons"] == [0, 250, 383]
    assert (body["cell"], body["num_layers"], body["hidden_size"], body["layer"]) == ("lstm", 2, 384, 1)
    assert set(body["values"]) == {"h", "c", "i", "f", "o", "g"} and body["max_gate_error"] < 1e-4
    local = trace(load_checkpoint(DEFAULT_MODEL)[0], data).layers[1]
    for q, rows in body["values"].items():
        assert len(rows) == 3 and all(len(row) == len(data) for row in rows)
        expected = local[q][:, [0, 250, 383]].T
        assert torch.allclose(torch.tensor(rows), expected, atol=6e-5, rtol=0), q


def test_activation_subsets_and_cache(client):
    full = client.post("/v1/activations", json={"text": CODE, "layer": 0, "quantities": ["c"]}).json()
    assert list(full["values"]) == ["c"] and len(full["values"]["c"]) == 384  # all neurons by default
    one = client.post("/v1/activations", json={"text": CODE, "layer": 0, "neurons": [17], "quantities": ["c"]}).json()
    assert one["values"]["c"][0] == full["values"]["c"][17]


def test_find_neurons_on_a_python_file(client):
    """The issue's bar: an indentation-depth neuron with |r| >= 0.5 in the default model."""
    text = PYTHON_FILE.read_text()
    r = client.post("/v1/neurons", json={"text": text, "top": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["layers"] == [0, 1] and body["quantities"] == ["h", "c"]
    features = {f["name"]: f for f in body["features"]}
    assert list(features) == ["indent_depth", "bracket_depth", "in_string", "in_comment", "column",
                              "to_identifier_end"]
    indent = features["indent_depth"]
    assert len(indent["values"]) == len(text.encode()) and indent["description"]
    best = indent["best"][0]
    assert abs(best["r"]) >= 0.5, best
    assert [abs(s["r"]) for s in indent["best"]] == sorted((abs(s["r"]) for s in indent["best"]), reverse=True)
    assert None in features["to_identifier_end"]["values"]  # undefined outside identifiers
    one = client.post("/v1/neurons", json={"text": text, "layers": [1], "quantities": ["o"],
                                           "features": ["column"], "top": 1}).json()
    assert [f["name"] for f in one["features"]] == ["column"]
    assert one["features"][0]["best"][0]["layer"] == 1 and one["features"][0]["best"][0]["quantity"] == "o"


@pytest.mark.parametrize("path,body,status,message", [
    ("/v1/activations", {"text": "x" * (MAX_CHARS + 1)}, 413, "at most 4096"),
    ("/v1/activations", {"text": "é" * (MAX_CHARS // 2 + 1)}, 413, "UTF-8 bytes"),
    ("/v1/neurons", {"text": "x" * (MAX_CHARS + 1)}, 413, "CODELSTM_EXPLORE_MAX_CHARS"),
    ("/v1/activations", {"text": "x", "layer": 2}, 422, "layer 2 does not exist: the model has 2 layers (0..1)"),
    ("/v1/activations", {"text": "x", "layer": -1}, 422, "layer"),
    ("/v1/activations", {"text": "x", "neurons": [3, 384]}, 422, "neuron 384 does not exist: layer 0 has 384"),
    ("/v1/activations", {"text": "x", "neurons": [-1]}, 422, "neuron -1 does not exist"),
    ("/v1/activations", {"text": "x", "quantities": ["z"]}, 422, "quantities"),
    ("/v1/activations", {"text": "x" * 4000}, 422, "(6 quantities x 384 neurons x 4000 bytes); at most 4194304"),
    ("/v1/activations", {"text": ""}, 422, "text"),
    ("/v1/activations", {"layer": 0}, 422, "text"),
    ("/v1/activations", {"text": "x", "model": "gpt"}, 422, "neither null"),
    ("/v1/activations", {"text": "x", "model": "task:sorting"}, 422, "unknown task 'sorting'"),
    ("/v1/neurons", {"text": "x", "layers": [0, 5]}, 422, "layer 5 does not exist"),
    ("/v1/neurons", {"text": "x", "features": ["indent_depth", "vibes"]}, 422, "unknown ['vibes']"),
    ("/v1/neurons", {"text": "x", "top": 0}, 422, "top"),
    ("/v1/explore/tasks/sorting/train", {}, 404, "unknown task 'sorting'; tasks: counting"),
    ("/v1/explore/tasks/counting/train", {"steps": 1}, 422, "steps"),
])
def test_bad_input_is_a_clear_4xx(client, path, body, status, message):
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"} if path.endswith("/train") else {}  # training: admin's
    r = client.post(path, json=body, headers=admin)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert message in error["message"] and error["type"] and "Traceback" not in r.text


def test_untrained_task_model_is_409(client):
    models = {m["id"]: m for m in client.get("/v1/explore/models").json()}
    if models["task:copy"]["trained"]:
        pytest.skip("copy was trained by another test")
    r = client.post("/v1/activations", json={"text": "abX", "model": "task:copy"})
    assert r.status_code == 409 and "POST /v1/explore/tasks/copy/train" in r.json()["error"]["message"]


def test_models_listing(client):
    models = client.get("/v1/explore/models").json()
    assert [m["id"] for m in models] == ["served", "task:counting", "task:selective", "task:state", "task:copy"]
    served = models[0]
    assert served["name"] == client.get("/v1/model").json()["name"]
    assert (served["cell"], served["num_layers"], served["hidden_size"]) == ("lstm", 2, 384)
    assert served["quantities"] == ["h", "c", "i", "f", "o", "g"] and served["features"][0] == "indent_depth"
    counting = models[1]
    assert counting["sample"].count("\0") == 11 and counting["features"][0] == "a_minus_b"


def test_training_needs_the_admin_key(client):
    r = client.post("/v1/explore/tasks/state/train", json={"steps": 10})  # a user's key, not the admin's
    assert r.status_code == 401 and r.json()["error"]["type"] == "unauthorized"


def test_explorer_needs_the_key(server):
    for method, path, body in (("POST", "/v1/activations", {"text": "x"}), ("POST", "/v1/neurons", {"text": "x"}),
                               ("GET", "/v1/explore/models", None), ("POST", "/v1/explore/tasks/state/train", {})):
        r = httpx.request(method, f"{server}{path}", json=body)
        assert r.status_code == 401 and r.json()["error"]["type"] == "unauthorized", path


def _checkpoint(tmp_path, cell: str):
    torch.manual_seed(1)
    model = ByteLM(ModelConfig(cell=cell, embed_dim=8, hidden_size=16, num_layers=2)).eval()
    return save_checkpoint(tmp_path / cell, model), model


def test_gru_checkpoint_has_h_and_says_so(tmp_path):
    path, model = _checkpoint(tmp_path, "gru")
    with running_server(path) as url:
        r = httpx.post(f"{url}/v1/activations", json={"text": "ab", "layer": 1}, timeout=60)
        assert r.status_code == 200 and list(r.json()["values"]) == ["h"]
        assert r.json()["values"]["h"][3] == pytest.approx(trace(model, b"ab").layers[1]["h"][:, 3].tolist(), abs=6e-5)
        r = httpx.post(f"{url}/v1/activations", json={"text": "ab", "quantities": ["h", "c", "f"]}, timeout=60)
        assert r.status_code == 422
        assert "quantities ['c', 'f'] do not exist in a GRU cell, which has ['h']" in r.json()["error"]["message"]
        r = httpx.post(f"{url}/v1/neurons", json={"text": "ab\n  cd\n", "quantities": ["g"]}, timeout=60)
        assert r.status_code == 422


def test_quantised_service_explores_its_float_weights(tmp_path):
    """CODELSTM_QUANTIZE=int8 serves int8 weights, which have no gates to read: the explorer shows the float
    checkpoint the service was started from."""
    path, model = _checkpoint(tmp_path, "lstm")
    with running_server(path, quantize="int8") as url:
        r = httpx.post(f"{url}/v1/activations", json={"text": "x = 1\n", "layer": 1, "neurons": [2]}, timeout=60)
        assert r.status_code == 200, r.text
        expected = trace(model, b"x = 1\n").layers[1]
        for q, rows in r.json()["values"].items():
            assert rows[0] == pytest.approx(expected[q][:, 2].tolist(), abs=6e-5), q
