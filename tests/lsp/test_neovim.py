"""A real editor: headless Neovim runs the snippet from docs/editors and gets completions from codelstm."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

NVIM = shutil.which("nvim")


@pytest.mark.skipif(NVIM is None and not os.environ.get("CI"), reason="neovim is not installed (.ci/run installs it)")
def test_neovim_receives_completion_items(http_server, tmp_path):
    assert NVIM, "CI must have neovim (Debian package, installed by .ci/run)"
    source = tmp_path / "example.py"
    source.write_text("# module 7\n\ndef function_2(value):\n    return value + 2\n\ndef func")
    out = tmp_path / "items.json"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
        "CODELSTM_SERVER_URL": http_server,
        "CODELSTM_SNIPPET": str(ROOT / "docs" / "editors" / "neovim.lua"),
        "CODELSTM_FILE": str(source),
        "CODELSTM_LINE": "5",
        "CODELSTM_COL": "8",
        "CODELSTM_OUT": str(out),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }
    driver = ROOT / "tests" / "lsp" / "test_data" / "nvim_driver.lua"
    proc = subprocess.run([NVIM, "--headless", "-n", "-i", "NONE", "-u", str(driver)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert out.is_file(), f"neovim wrote nothing: {proc.stdout} {proc.stderr}"
    got = json.loads(out.read_text())
    assert got["attached"], "codelstm never attached to the buffer"
    assert got["items"], "neovim received no completion items"
    first = got["items"][0]
    assert first["label"].startswith("func") and first["newText"] == first["label"]
    assert first["range"]["start"] == {"line": 5, "character": 4}
    assert first["range"]["end"] == {"line": 5, "character": 8}
