"""`codelstm serve --config FILE`: the sample file stays true, precedence is flags > CODELSTM_* > file >
defaults (also through a real server on loopback), and a bad file is a one-line error before anything loads."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from codelstm.paths import DEFAULT_MODEL
from codelstm.server.settings import ConfigFileError, ServerSettings, load_settings
from tests.conftest import ROOT, free_port, run_cli, server_process

SAMPLE = ROOT / "docs" / "codelstm.example.toml"


@pytest.fixture
def clean_env(monkeypatch):
    """No CODELSTM_* variables from the shell that runs the tests."""
    import os

    for name in list(os.environ):
        if name.startswith("CODELSTM_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_the_sample_config_loads_to_exactly_the_defaults(clean_env):
    assert load_settings(SAMPLE).model_dump() == ServerSettings().model_dump()


def test_the_sample_config_names_every_setting():
    named = set(re.findall(r"^#?\s*([a-z_]+)\s*=", SAMPLE.read_text(), flags=re.M))
    missing = set(ServerSettings.model_fields) - named
    assert not missing, f"add these settings to {SAMPLE.name}: {sorted(missing)}"
    assert named <= set(ServerSettings.model_fields), f"{SAMPLE.name} names settings that do not exist"


def test_precedence_is_arguments_then_environment_then_file_then_defaults(clean_env, tmp_path):
    config = tmp_path / "codelstm.toml"
    config.write_text("port = 9001\nmax_queue = 7\ncache_mb = 3\n")
    clean_env.setenv("CODELSTM_PORT", "9002")
    clean_env.setenv("CODELSTM_MAX_QUEUE", "8")
    settings = load_settings(config, port=9003)
    assert (settings.port, settings.max_queue, settings.cache_mb, settings.max_batch) == (9003, 8, 3, 64)


def test_an_unknown_key_names_it_and_what_was_meant(clean_env, tmp_path):
    config = tmp_path / "codelstm.toml"
    config.write_text("port = 9001\nmax_queu = 7\n")
    with pytest.raises(ConfigFileError, match=r"unknown setting 'max_queu'.*did you mean 'max_queue'"):
        load_settings(config)


def one_line_error(result) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("codelstm: error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize("text, expected", [
    ("port = 8000\n[server]\nmax_queue = 3\n", "unknown setting 'server'"),
    ("port = 8000\nmodel = 'team'\n", "unknown setting 'model'"),
    ("port = \n", "is not valid TOML"),
    ("port = 'eighty'\n", "invalid setting port (from --port, CODELSTM_PORT or the config file)"),
    ("log_format = 'yaml'\n", "invalid setting log_format"),
])
def test_serve_with_a_bad_config_file_exits_with_a_one_line_error(tmp_path, text, expected):
    config = tmp_path / "codelstm.toml"
    config.write_text(text)
    assert expected in one_line_error(run_cli("serve", "--config", str(config), timeout=60))


def test_serve_with_a_missing_config_file_says_so(tmp_path):
    missing = tmp_path / "nope.toml"
    assert f"config file '{missing}' not found" in one_line_error(run_cli("serve", "--config", str(missing),
                                                                           timeout=60))


def test_a_real_server_takes_flags_over_environment_over_file_over_defaults(tmp_path, monkeypatch):
    env_port, file_port = free_port(), free_port()
    config = tmp_path / "codelstm.toml"
    config.write_text(f'port = {file_port}\napi_keys = ["file-key"]\nmax_body_bytes = 2048\n'
                      'log_format = "json"\nlog_level = "warning"\n')
    monkeypatch.setenv("CODELSTM_PORT", str(env_port))
    log = tmp_path / "serve.log"
    with server_process(DEFAULT_MODEL, extra_args=("--config", str(config), "--log-format", "text",
                                                   "--log-level", "info"),
                        output=log, api_keys="env-key") as (url, _):
        # the port: the flag's (server_process passes --port), not the environment's or the file's
        for port in (env_port, file_port):
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
        # the API keys: the environment's, not the file's
        model = httpx.get(f"{url}/v1/model", headers={"Authorization": "Bearer env-key"})
        assert model.status_code == 200
        assert httpx.get(f"{url}/v1/model", headers={"Authorization": "Bearer file-key"}).status_code == 401
        # the body limit: the file's, not the default 1 MiB
        big = httpx.post(f"{url}/v1/complete", json={"prefix": "x" * 3000},
                         headers={"Authorization": "Bearer env-key", "X-Request-ID": "big-body"})
        assert big.status_code == 413
        # the log format and level: the flags', not the file's json at warning
        forged = 'a.py" status=200\n2026-01-01T00:00:00.000Z INFO codelstm.access forged'
        ok = httpx.post(f"{url}/v1/complete", json={"prefix": "def f", "document_id": forged, "n": 1},
                        headers={"Authorization": "Bearer env-key", "X-Request-ID": "quoted-doc"}, timeout=60)
        assert ok.status_code == 200
        text = wait_for_line(log, "request_id=quoted-doc ")
        assert re.search(r"^\S+Z INFO codelstm\.server serving ", text, flags=re.M), text
        assert re.search(r"^\S+Z INFO codelstm\.access POST /v1/complete 413 request_id=big-body ", text,
                         flags=re.M), text
        assert not any(line.startswith("{") for line in text.splitlines())
        [line] = [ln for ln in text.splitlines() if "request_id=quoted-doc " in ln]
        assert 'document="a.py\\" status=200\\n2026' in line  # quoted and escaped: still one line
        assert re.search(r" mode=line fed_bytes=\d+ cached_bytes=0 queue_ms=[\d.]+ compute_ms=[\d.]+ ", line), line


def wait_for_line(log: Path, needle: str, timeout: float = 10) -> str:
    """The log's text once a line with `needle` is in it (access lines follow their response)."""
    deadline = time.time() + timeout
    while needle not in (text := log.read_text()) and time.time() < deadline:
        time.sleep(0.05)
    return text


def test_serve_refuses_a_workspace_limit_whose_index_would_not_fit_the_memory_for_workspaces(tmp_path):
    assert ServerSettings(workspace_max_mb=16, workspace_mb=2160).workspace_max_mb == 16
    config = tmp_path / "codelstm.toml"
    config.write_text("workspace_max_mb = 16\n")
    assert "workspace_max_mb=16 needs workspace_mb >= 2160" in one_line_error(
        run_cli("serve", "--config", str(config), timeout=60))
