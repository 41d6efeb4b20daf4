"""docker-compose.yml and the Dockerfile, checked with real parsers (no Docker engine runs in CI)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

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
