"""Shared fixtures: a tiny trained checkpoint that every layer's tests can load."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from codelstm.server.process import free_port, serve_process  # noqa: F401 - free_port is shared with the tests

ROOT = Path(__file__).resolve().parent.parent
torch.set_num_threads(max(1, (os.cpu_count() or 1)))


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the real `codelstm` command line in a subprocess."""
    return subprocess.run([sys.executable, "-m", "codelstm.cli", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=timeout)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """A corpus built by the real builder from a folder of small, repetitive Python files."""
    src = tmp_path_factory.mktemp("src")
    for i in range(60):
        (src / f"mod_{i}.py").write_text(
            f"# module {i}\n\n" + "".join(f"def function_{j}(value):\n    return value + {j}\n\n" for j in range(i % 7 + 3)))
    out = tmp_path_factory.mktemp("corpus")
    result = run_cli("corpus", "build", str(src), "-o", str(out), "--val-fraction", "0.2", "--quiet")
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="session")
def tiny_model(tiny_corpus, tmp_path_factory) -> Path:
    """A small LSTM trained for a few hundred steps on the tiny corpus (learns its repeated structure)."""
    out = tmp_path_factory.mktemp("model")
    result = run_cli("train", "--data", str(tiny_corpus), "--out", str(out), "--steps", "300", "--hidden", "64",
                     "--layers", "1", "--embed", "16", "--lanes", "8", "--seq-len", "64", "--lr", "0.01",
                     "--eval-interval", "100", "--threads", "1", "--quiet")  # one thread: on busy cores two crawl
    assert result.returncode == 0, result.stderr
    return out


@contextmanager
def server_process(model: Path, port: int | None = None, *, extra_args: tuple[str, ...] = (),
                   output: Path | None = None, **env: str):
    """`codelstm serve` in a subprocess with CODELSTM_<KEY>=value settings; yields (base URL, process) once
    ready (tests that signal the server need the process). Its logs are in `process.stdout`, or in the file
    `output` (readable while it runs); `extra_args` follow the defaults (a later flag wins)."""
    environ = {**os.environ, "CODELSTM_THREADS": "1", **{f"CODELSTM_{k.upper()}": v for k, v in env.items()}}
    with serve_process("--model", str(model), "--log-level", "warning", *extra_args, env=environ, port=port,
                       cwd=ROOT, capture=True, output=output) as (url, proc):
        yield url, proc


@contextmanager
def running_server(model: Path, port: int | None = None, **env: str):
    """`server_process`, for tests that need only the URL."""
    with server_process(model, port, **env) as (url, _):
        yield url
