"""Benchmark helpers: a real `codelstm serve` on loopback, held-out source text, percentiles."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from codelstm.server.process import serve_process

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def server(model: str | None = None, **settings: str) -> Iterator[str]:
    """A real `codelstm serve` on loopback with CODELSTM_<KEY>=value settings; yields its base URL."""
    env = {**os.environ, **{f"CODELSTM_{k.upper()}": str(v) for k, v in settings.items()}}
    if model and Path(model).exists():  # a folder named from where the script was run (the server runs in ROOT)
        model = str(Path(model).resolve())
    args = ["--log-level", "warning", *(["--model", model] if model else [])]
    with serve_process(*args, env=env, cwd=ROOT, ready_timeout_s=120) as (url, _):
        yield url


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
