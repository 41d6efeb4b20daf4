"""A second real editor: headless Emacs with eglot loads the snippet from docs/editors, starts `codelstm lsp`
over stdio and asks it for completions, against a real `codelstm serve` or a backend that is down."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port

EMACS = shutil.which("emacs")
SOURCE = "# module 7\n\ndef function_2(value):\n    return value + 2\n\ndef func"
SNIPPET_TIMEOUT_S = 0.5  # the snippet's timeoutMs

pytestmark = pytest.mark.skipif(EMACS is None and not os.environ.get("CI"),
                                reason="emacs is not installed (.ci/run installs emacs-nox and elpa-eglot)")


def run_emacs(tmp_path: Path, server_url: str, requests: int = 1, timeout_ms: int | None = None) -> dict:
    """Run the elisp driver in `emacs --batch` on a Python file; return what Emacs saw."""
    assert EMACS, "CI must have emacs with eglot (Debian's emacs-nox and elpa-eglot, installed by .ci/run)"
    source = tmp_path / "example.py"
    source.write_text(SOURCE)
    out = tmp_path / "emacs.json"
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "HOME": str(home),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
        "CODELSTM_SERVER_URL": server_url,
        "CODELSTM_SNIPPET": str(ROOT / "docs" / "editors" / "emacs.el"),
        "CODELSTM_FILE": str(source),
        "CODELSTM_LINE": "5",
        "CODELSTM_COL": "8",
        "CODELSTM_REQUESTS": str(requests),
        "CODELSTM_OUT": str(out),
    }
    if timeout_ms is not None:  # as docs/editors.md shows: eglot sends it as workspace/didChangeConfiguration
        (tmp_path / ".dir-locals.el").write_text(
            f"((python-mode . ((eglot-workspace-configuration . ((:codelstm . (:timeoutMs {timeout_ms})))))))\n")
    driver = ROOT / "tests" / "lsp" / "test_data" / "emacs_driver.el"
    proc = subprocess.run([EMACS, "--batch", "-l", str(driver)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert out.is_file(), f"emacs wrote nothing (exit {proc.returncode}): {proc.stdout} {proc.stderr}"
    got = json.loads(out.read_text())
    assert got["attached"], f"eglot never managed the buffer with codelstm: {proc.stderr}"
    assert got["server"] == ["codelstm", "lsp"], got["server"]
    return got


@pytest.fixture(params=["refused", "silent"])
def down_url(request):
    """A backend that is down: nothing listening (connection refused), or a socket that never answers."""
    if request.param == "refused":
        yield f"http://127.0.0.1:{free_port()}"
        return
    with socket.socket() as listener:  # the kernel completes the handshake; nobody ever reads or answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_emacs_eglot_receives_and_applies_completion_items(http_server, tmp_path):
    # a generous timeout from .dir-locals.el: a loaded CI machine must not turn this test into a timeout
    got = run_emacs(tmp_path, http_server, timeout_ms=10000)
    [answer] = got["answers"]
    assert answer["items"], "emacs received no completion items"
    first = answer["items"][0]
    assert first["label"].startswith("func") and first["newText"] == first["label"]
    assert first["range"] == {"start": {"line": 5, "character": 4}, "end": {"line": 5, "character": 8}}
    assert [item["sortText"] for item in answer["items"]] == sorted(item["sortText"] for item in answer["items"])
    assert got["applied"] == "def " + first["label"], "eglot did not apply codelstm's edit to the buffer"
    assert got["showMessages"] == 0


def test_emacs_eglot_gets_empty_answers_in_time_and_one_warning_when_backend_down(down_url, tmp_path):
    got = run_emacs(tmp_path, down_url, requests=3)
    assert [answer["items"] for answer in got["answers"]] == [[], [], []]
    slowest = max(answer["seconds"] for answer in got["answers"])
    assert slowest < SNIPPET_TIMEOUT_S + 2.0, f"a completion took {slowest:.2f} s with the backend down"
    assert got["showMessages"] == 1, "expected one window/showMessage for the outage, not one per request"
    shown = re.findall(r"^\[eglot\] Server reports \(type=(\d)\): (.*)$", got["messages"], re.MULTILINE)
    assert len(shown) == 1, got["messages"]
    assert shown[0][0] == "2" and shown[0][1].startswith("codelstm: ") and down_url in shown[0][1]
