"""Benchmark helpers: a real `codelstm serve` on loopback, held-out source text, percentiles."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def server(model: str | None = None, **settings: str):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, **{f"CODELSTM_{k.upper()}": str(v) for k, v in settings.items()}}
    cmd = [sys.executable, "-m", "codelstm.cli", "serve", "--port", str(port), "--log-level", "warning"]
    if model:
        cmd += ["--model", model]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def held_out_texts(min_bytes: int = 6000, limit: int = 40) -> list[str]:
    """Python files the default model never trained on: its corpus's validation split when built here,
    else this project's own sources (written after the corpus was frozen)."""
    val = ROOT / "data" / "default-corpus" / "val.bin"
    texts: list[str] = []
    if val.is_file():
        for doc in val.read_bytes().split(b"\0"):
            if len(doc) >= min_bytes:
                texts.append(doc.decode("utf-8"))
    if not texts:
        texts = [p.read_text() for p in sorted((ROOT / "codelstm").rglob("*.py")) if p.stat().st_size >= min_bytes]
    return texts[:limit]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]
