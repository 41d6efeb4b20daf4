"""docker-compose.yml and the Dockerfile, checked with real parsers (no Docker engine runs in CI)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from codelstm.commands.common import resolve_model_path
from codelstm.commands.serve import exposure_warning
from codelstm.model.checkpoint import read_config
from codelstm.paths import DEFAULT_MODEL
from codelstm.server.settings import ServerSettings
from tests.conftest import ROOT

BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    assert found, f"{name} is missing: it is a test extra (pip install -e '.[test]')"
    return found


def test_compose_file_matches_the_compose_spec():
    result = subprocess.run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
                             str(ROOT / "docker-compose.yml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_services_are_wired_as_documented():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    api, trainer = compose["services"]["api"], compose["services"]["trainer"]
    assert "/readyz" in " ".join(api["healthcheck"]["test"])
    assert "models:/models" in api["volumes"]
    assert trainer["profiles"] == ["train"]
    assert trainer["depends_on"]["api"]["condition"] == "service_healthy"
    assert any(v.endswith(":/repos:ro") for v in trainer["volumes"])
    assert trainer["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert "torchrun" in " ".join(trainer["command"])


def test_dockerfile_passes_hadolint():
    result = subprocess.run([tool("hadolint"), str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_broken_compose_file_is_caught(tmp_path):
    """The validator can fail: a service with a misspelt key is rejected."""
    bad = tmp_path / "compose.yml"
    bad.write_text("services:\n  api:\n    imagee: codelstm\n")
    result = subprocess.run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(bad)],
                            capture_output=True, text=True)
    assert result.returncode != 0


_VARIABLE = re.compile(r"\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}|\$(\w+)")


def interpolate(value: str, shell: dict[str, str]) -> str:
    """Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, $VAR and $$."""
    def one(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group(1) or m.group(4), m.group(2), m.group(3)
        have = shell.get(name)
        if op in (":-", "-"):
            return have if have or (op == "-" and have is not None) else arg
        if op in (":?", "?") and not have:
            raise KeyError(f"{name}: {arg}")
        return have or ""
    return _VARIABLE.sub(one, value)


def dockerfile_env() -> dict[str, str]:
    """The ENV of the Dockerfile (KEY=value pairs, continued lines joined)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    env = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            env.update(pair.split("=", 1) for pair in line[4:].split())
    return env


def container_env(service: str, shell: dict[str, str]) -> dict[str, str]:
    """What the service's container sees: the image's ENV, then compose's `environment` (a key without a value
    is taken from the shell when set there, else left out), interpolated from `shell`."""
    spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"][service]
    env = dockerfile_env()
    for key, value in spec["environment"].items():
        if value is None:
            if key in shell:
                env[key] = shell[key]
        else:
            env[key] = interpolate(str(value), shell)
    return env


def settings_in_container(monkeypatch, shell: dict[str, str]) -> ServerSettings:
    for key in list(os.environ):
        if key.startswith("CODELSTM_"):
            monkeypatch.delenv(key)
    for key, value in container_env("api", shell).items():
        monkeypatch.setenv(key, value)
    return ServerSettings()


def test_compose_defaults_serve_the_bundled_model(monkeypatch):
    """`docker compose up api` with no variables set: the settings the container gets load the bundled model."""
    settings = settings_in_container(monkeypatch, {})
    assert settings.model_path is None and resolve_model_path(settings.model_path) == DEFAULT_MODEL
    read_config(resolve_model_path(settings.model_path))
    assert settings.models_dir == Path("/models") and settings.api_keys == [] and settings.admin_key is None
    assert (settings.host, settings.port) == ("0.0.0.0", 8000)
    assert not settings.loopback  # so training the explorer's models needs the admin key, and serve warns
    assert exposure_warning(settings) is not None


def test_compose_passes_a_model_and_keys_from_the_shell(monkeypatch):
    settings = settings_in_container(monkeypatch, {"CODELSTM_MODEL_PATH": "/models/team", "CODELSTM_API_KEYS": "a,b",
                                                   "CODELSTM_ADMIN_KEY": "root"})
    assert settings.model_path == Path("/models/team") and settings.api_keys == ["a", "b"]
    assert settings.admin_key == "root"


def test_compose_publishes_on_this_host_only_by_default():
    ports = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["api"]["ports"]
    assert [interpolate(p, {}) for p in ports] == ["127.0.0.1:8000:8000"]
    assert [interpolate(p, {"CODELSTM_PUBLISH_HOST": "0.0.0.0"}) for p in ports] == ["0.0.0.0:8000:8000"]


def test_empty_model_path_means_the_bundled_model(monkeypatch):
    """What the compose file used to pass (CODELSTM_MODEL_PATH: "") is the default, not Path('.')."""
    monkeypatch.setenv("CODELSTM_MODEL_PATH", "")
    assert ServerSettings().model_path is None
