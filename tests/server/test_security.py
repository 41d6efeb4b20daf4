"""Security defaults: reload loads only from the models folder and names no path outside it; CPU-burning
explorer training needs the admin key once keys are configured; exposure is detected."""

from __future__ import annotations

import shutil

import httpx
import pytest

from starlette.requests import Request

from codelstm.commands.serve import exposure_warning
from codelstm.server.deps import check_trainer
from codelstm.server.errors import APIError
from codelstm.server.settings import ServerSettings
from tests.conftest import running_server
from tests.server.conftest import ADMIN_KEY, API_KEY


@pytest.fixture(scope="module")
def models(tiny_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    shutil.copytree(tiny_model, root / "team")
    (root / "broken").mkdir()
    (root / "broken" / "config.json").write_text("{not json")
    return root


@pytest.fixture(scope="module")
def admin(tiny_model, models):
    with running_server(tiny_model, api_keys=API_KEY, admin_key=ADMIN_KEY, models_dir=str(models)) as url:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=60) as c:
            yield c


@pytest.mark.parametrize("path", ["/etc", "../../etc", "team/../../etc", "/root/.ssh"])
def test_reload_outside_the_models_folder_is_403_and_names_no_path(admin, path):
    r = admin.post("/v1/model/reload", json={"path": path})
    assert r.status_code == 403 and r.json()["error"]["type"] == "forbidden"
    assert "/etc" not in r.text and "/root" not in r.text and "exist" not in r.text


def test_reload_errors_name_paths_relative_to_the_models_folder(admin, models):
    missing = admin.post("/v1/model/reload", json={"path": "nope"})
    assert missing.status_code == 400 and "'nope'" in missing.json()["error"]["message"]
    broken = admin.post("/v1/model/reload", json={"path": "broken"})
    assert broken.status_code == 400 and broken.json()["error"]["type"] == "invalid_checkpoint"
    assert str(models) not in broken.text and "broken" in broken.text


@pytest.mark.parametrize("path", ["a\u0000b", "x" * 300])  # NUL; a name over 255 bytes
def test_reload_of_an_impossible_path_is_400_not_500(admin, models, path):
    r = admin.post("/v1/model/reload", json={"path": path})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_checkpoint"
    assert str(models) not in r.text


def test_reload_by_name_and_by_absolute_path_inside_the_folder(admin, models):
    assert admin.post("/v1/model/reload", json={"path": "team"}).json()["name"] == "team"
    assert admin.post("/v1/model/reload", json={"path": str(models / "team")}).status_code == 200


def test_explorer_training_needs_the_admin_key_when_keys_are_configured(admin):
    user = {"Authorization": f"Bearer {API_KEY}"}
    r = admin.post("/v1/explore/tasks/counting/train", json={"steps": 10}, headers=user)
    assert r.status_code == 401 and r.json()["error"]["type"] == "unauthorized"
    assert admin.get("/v1/explore/models", headers=user).status_code == 200  # reading stays a user's


@pytest.mark.parametrize("host,keys,warns", [("127.0.0.1", "", False), ("::1", "", False), ("localhost", "", False),
                                             ("0.0.0.0", "", True), ("10.1.2.3", "", True), ("example.org", "", True),
                                             ("0.0.0.0", "k", False)])
def test_non_loopback_bind_without_keys_warns(host, keys, warns, monkeypatch):
    monkeypatch.setenv("CODELSTM_API_KEYS", keys)
    settings = ServerSettings(host=host)
    assert (exposure_warning(settings) is not None) == warns


@pytest.mark.parametrize("host,keys,needs_admin", [("127.0.0.1", "", False), ("127.0.0.1", "k", True),
                                                   ("0.0.0.0", "", True)])
def test_training_needs_admin_when_keyed_or_reachable(host, keys, needs_admin, monkeypatch):
    monkeypatch.setenv("CODELSTM_API_KEYS", keys)
    settings = ServerSettings(host=host, admin_key="secret")
    anonymous = Request({"type": "http", "headers": []})
    if needs_admin:
        with pytest.raises(APIError) as e:
            check_trainer(anonymous, settings)
        assert e.value.status == 401
        check_trainer(Request({"type": "http", "headers": [(b"authorization", b"Bearer secret")]}), settings)
    else:
        check_trainer(anonymous, settings)
