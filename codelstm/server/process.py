"""`codelstm serve` as a child process on loopback, for the tests and benchmarks that need the real server."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve_process(*args: str, env: Mapping[str, str] | None = None, port: int | None = None,
                  cwd: Path | None = None, capture: bool = False, output: Path | None = None,
                  ready_timeout_s: float = 60.0,
                  stop_timeout_s: float = 10.0) -> Iterator[tuple[str, subprocess.Popen]]:
    """Start `codelstm serve --host 127.0.0.1 --port PORT *args`, yield (base URL, process) once /readyz
    answers 200; stop it with SIGTERM on the way out and kill it if it lingers.

    Its stdout and stderr, joined, go to the file `output` (readable while it runs), or with `capture` to
    `process.stdout` (a pipe, text), or else to this process's own; an exit before it is ready raises
    RuntimeError with what it wrote."""
    port = port or free_port()
    sink = open(output, "w") if output is not None else subprocess.PIPE if capture else None
    joined = subprocess.STDOUT if sink is not None else None
    proc = subprocess.Popen([sys.executable, "-m", "codelstm.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                             *args], cwd=cwd, env=dict(env) if env is not None else None, stdout=sink,
                            stderr=joined, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_timeout_s
        while True:
            if proc.poll() is not None:
                said = (output.read_text() if output is not None else proc.stdout.read() if capture
                        else "(its output went to this process's own)")
                raise RuntimeError(f"the server exited with status {proc.returncode} before it was ready: {said}")
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server was not ready within {ready_timeout_s:.0f} s")
            time.sleep(0.2)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=stop_timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if output is not None:
            sink.close()
