"""Soak and chaos test of a real `codelstm serve` on loopback (issue 13).

Usage: python bench/soak.py [--minutes 10] [--clients 32] [--model PATH] [--max-doc-bytes 1000000]
                            [--bad-every 20] [--reload-every 60] [--json OUT]

Starts the server on 127.0.0.1 (it never talks to another address) and, for a bounded time, runs
`--clients` simulated editors. Each types into documents of 1 KB to `--max-doc-bytes` (log-uniform
sizes, built from held-out Python source) with a `document_id`, a few characters per request, in
token, line or block mode; now and then it reads a document cold (no id), gives up on a request
after 50-300 ms (a cancellation: the client closes the connection), or sends the next keystroke
before the previous answer came back (a superseding request). Every `--bad-every`-th request is a
fuzzed bad one (lone surrogates, degenerate temperatures, empty or long stop strings, wrong types,
broken JSON, an oversized body). Every `--reload-every` seconds the model is reloaded. The server's
RSS and queue depth are sampled every few seconds.

It reports requests, status counts, p50/p99 per mode, RSS at start, middle and end, and queue depth,
and checks: no response with status 500, no hung request (no answer within the server's deadline
plus a margin), every bad request answered 4xx, and (for runs of 5 minutes or more) RSS growth under
10% between 20% of the run and its end. The exit status is 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, held_out_texts, percentile  # noqa: E402

from codelstm.server.process import serve_process  # noqa: E402

ADMIN_KEY = "soak-admin"
REQUEST_TIMEOUT_S = 10.0  # the server's deadline
HUNG_MARGIN_S = 10.0  # no answer this long after the deadline: hung
MODES = ("token", "line", "block")

# Fuzzed bad requests: (description, body as bytes or JSON-able, content-type). Each must get a 4xx.
BAD_REQUESTS = [
    ("lone surrogate in prefix", '{"prefix": "def f\\ud800"}'),
    ("lone surrogate in suffix", '{"prefix": "x", "suffix": "\\udc00)"}'),
    ("lone surrogate in stop", '{"prefix": "x", "stop": ["\\ud800"]}'),
    ("temperature underflow", {"prefix": "x", "temperature": 1e-45}),
    ("temperature negative", {"prefix": "x", "temperature": -1}),
    ("empty stop string", {"prefix": "x", "stop": [""]}),
    ("long stop string", {"prefix": "x", "stop": ["y" * 65]}),
    ("nine stop strings", {"prefix": "x", "stop": ["a"] * 9}),
    ("n zero", {"prefix": "x", "n": 0}),
    ("max_chars huge", {"prefix": "x", "max_chars": 10**9}),
    ("seed huge", {"prefix": "x", "seed": 10**30}),
    ("prefix number", {"prefix": 5}),
    ("prefix missing", {"suffix": "x"}),
    ("mode unknown", {"prefix": "x", "mode": "word"}),
    ("broken json", "{not json"),
    ("invalid utf-8", b'{"prefix": "\xff\xfe"}'),
    ("oversized body", None),  # filled in with a body over the server's limit
    ("openai empty stop", {"prompt": "x", "stop": ""}),
    ("openai lone surrogate", '{"prompt": "\\ud800"}'),
    ("openai temperature underflow", {"prompt": "x", "temperature": 1e-45}),
]
MAX_BODY_BYTES = 2 << 20


@dataclass
class Tally:
    statuses: Counter = field(default_factory=Counter)
    latency_ms: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in MODES})
    bad: Counter = field(default_factory=Counter)  # status of each bad request
    bad_not_4xx: list[str] = field(default_factory=list)
    hung: int = 0
    client_cancelled: int = 0
    errors_500: list[str] = field(default_factory=list)
    reloads: Counter = field(default_factory=Counter)
    samples: list[dict] = field(default_factory=list)  # t, rss_mb, cache_mb (the state cache's own count), queue_depth


@contextmanager
def soak_server(model: Path, models_dir: Path, **settings: str):
    """`codelstm serve` on loopback with the admin key; yields (url, pid)."""
    env = {**os.environ, "CODELSTM_ADMIN_KEY": ADMIN_KEY, "CODELSTM_MODELS_DIR": str(models_dir),
           "CODELSTM_REQUEST_TIMEOUT_S": str(REQUEST_TIMEOUT_S), "CODELSTM_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
           **{f"CODELSTM_{k.upper()}": str(v) for k, v in settings.items()}}
    with serve_process("--model", str(model), "--log-level", "error", env=env, cwd=ROOT, ready_timeout_s=120,
                       stop_timeout_s=30) as (url, proc):
        yield url, proc.pid


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def source_text(max_bytes: int) -> str:
    """Held-out Python source, repeated until any document of up to `max_bytes` can be cut from it."""
    joined = "\n\n".join(held_out_texts(min_bytes=2000, limit=60))
    return joined * (math.ceil(max_bytes / max(len(joined), 1)) + 2)


async def record(t: Tally, mode: str | None, started: float, r: httpx.Response, what: str) -> None:
    t.statuses[r.status_code] += 1
    if r.status_code >= 500 and r.status_code not in (503, 504):
        t.errors_500.append(f"{what}: {r.status_code} {r.text[:200]}")
    if r.status_code == 200 and mode is not None:
        t.latency_ms[mode].append((time.perf_counter() - started) * 1000)


async def post(c: httpx.AsyncClient, t: Tally, body: dict, mode: str | None, what: str,
               give_up_s: float | None = None) -> None:
    started = time.perf_counter()
    try:
        r = await c.post("/v1/complete", json=body,
                         timeout=give_up_s if give_up_s is not None else REQUEST_TIMEOUT_S + HUNG_MARGIN_S)
    except httpx.TimeoutException:
        if give_up_s is not None:
            t.client_cancelled += 1
        else:
            t.hung += 1
        return
    await record(t, mode, started, r, what)


async def bad_request(c: httpx.AsyncClient, t: Tally, rng: random.Random) -> None:
    name, body = rng.choice(BAD_REQUESTS)
    path = "/v1/completions" if name.startswith("openai") else "/v1/complete"
    if body is None:
        content = b'{"prefix": "' + b"x" * (MAX_BODY_BYTES + 1) + b'"}'
    elif isinstance(body, bytes):
        content = body
    elif isinstance(body, str):
        content = body.encode()
    else:
        content = json.dumps(body).encode()
    try:
        r = await c.post(path, content=content, headers={"content-type": "application/json"},
                         timeout=REQUEST_TIMEOUT_S + HUNG_MARGIN_S)
    except httpx.TimeoutException:
        t.hung += 1
        t.bad_not_4xx.append(f"{name}: no answer")
        return
    t.statuses[r.status_code] += 1
    t.bad[r.status_code] += 1
    if not 400 <= r.status_code < 500:
        t.bad_not_4xx.append(f"{name}: {r.status_code} {r.text[:200]}")


async def editor(c: httpx.AsyncClient, t: Tally, cid: int, text: str, end: float, rng: random.Random,
                 max_doc: int, bad_every: int, counter: list[int]) -> None:
    """One simulated editor: opens documents and types into them until the end of the run."""
    doc = 0
    while time.monotonic() < end:
        doc += 1
        size = int(math.exp(rng.uniform(math.log(1000), math.log(max_doc))))
        start = rng.randrange(0, max(1, len(text) - size - 2000))
        pos = start + size
        doc_id = f"file:///soak/{cid}/{doc}.py"
        for _ in range(rng.randint(5, 40)):
            if time.monotonic() >= end:
                return
            counter[0] += 1
            if counter[0] % bad_every == 0:
                await bad_request(c, t, rng)
                continue
            pos += rng.randint(1, 3)
            mode = rng.choice(MODES)
            body = {"prefix": text[start:pos], "document_id": doc_id, "mode": mode, "n": 3,
                    "max_chars": 128 if mode == "block" else 64}
            roll = rng.random()
            if roll < 0.05:  # a cold read: no document id (the server reads only its cold cap)
                await post(c, t, {**body, "document_id": None}, mode, "cold")
            elif roll < 0.12:  # the user types on: the client gives up (closes the connection)
                await post(c, t, body, None, "cancelled", give_up_s=rng.uniform(0.05, 0.3))
            elif roll < 0.20:  # a superseding keystroke: the next request before the previous answer
                first = asyncio.create_task(post(c, t, body, mode, "superseded"))
                await asyncio.sleep(rng.uniform(0.01, 0.1))
                pos += 1
                await post(c, t, {**body, "prefix": text[start:pos]}, mode, "superseding")
                await first
            else:
                await post(c, t, body, mode, "typing")
            await asyncio.sleep(rng.uniform(0.0, 0.2))  # typing speed


async def reloader(c: httpx.AsyncClient, t: Tally, end: float, every_s: float) -> None:
    names = ["a", "b"]
    k = 0
    while True:
        await asyncio.sleep(every_s)
        if time.monotonic() >= end:
            return
        k += 1
        r = await c.post("/v1/model/reload", json={"path": names[k % 2]}, timeout=120,
                         headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        t.reloads[r.status_code] += 1
        if r.status_code >= 500:
            t.errors_500.append(f"reload: {r.status_code} {r.text[:200]}")


async def sampler(c: httpx.AsyncClient, t: Tally, pid: int, t0: float, end: float, every_s: float) -> None:
    while True:
        depth = cache = float("nan")
        try:
            for line in (await c.get("/metrics", timeout=30)).text.splitlines():
                if line.startswith("codelstm_queue_depth "):
                    depth = float(line.split()[1])
                elif line.startswith("codelstm_cache_bytes "):
                    cache = float(line.split()[1]) / 2**20
        except httpx.HTTPError:
            pass
        t.samples.append({"t": round(time.monotonic() - t0, 1), "rss_mb": round(rss_mb(pid), 1),
                          "cache_mb": round(cache, 1), "queue_depth": depth})
        if time.monotonic() >= end:
            return
        await asyncio.sleep(min(every_s, max(0.0, end - time.monotonic())))


async def soak(url: str, pid: int, seconds: float, clients: int, max_doc: int, bad_every: int,
               reload_every: float, seed: int = 0) -> Tally:
    rng = random.Random(seed)
    text = source_text(max_doc)
    t = Tally()
    t0 = time.monotonic()
    end = t0 + seconds
    counter = [0]
    limits = httpx.Limits(max_connections=clients * 2 + 8)
    async with httpx.AsyncClient(base_url=url, limits=limits) as c:
        await asyncio.gather(
            sampler(c, t, pid, t0, end, every_s=max(1.0, min(10.0, seconds / 30))),
            reloader(c, t, end, reload_every),
            *[editor(c, t, i, text, end, random.Random(rng.random()), max_doc, bad_every, counter)
              for i in range(clients)])
    return t


def summarise(t: Tally, seconds: float) -> dict:
    rss = [s["rss_mb"] for s in t.samples]
    warm = [s for s in t.samples if s["t"] >= 0.2 * seconds] or t.samples
    growth = (warm[-1]["rss_mb"] - warm[0]["rss_mb"]) / warm[0]["rss_mb"] if warm else float("nan")
    depths = [s["queue_depth"] for s in t.samples if not math.isnan(s["queue_depth"])]
    return {
        "seconds": seconds,
        "requests": sum(t.statuses.values()) + t.hung + t.client_cancelled,
        "statuses": dict(sorted(t.statuses.items())),
        "client_cancelled": t.client_cancelled,
        "hung": t.hung,
        "status_500": len(t.errors_500),
        "errors_500": t.errors_500[:10],
        "bad_requests": sum(t.bad.values()),
        "bad_statuses": dict(sorted(t.bad.items())),
        "bad_not_4xx": t.bad_not_4xx[:10],
        "reloads": dict(t.reloads),
        "latency_ms": {m: {"n": len(v), "p50": round(percentile(v, 50), 1), "p99": round(percentile(v, 99), 1)}
                       for m, v in t.latency_ms.items()},
        "rss_mb": {"start": rss[0] if rss else None, "middle": rss[len(rss) // 2] if rss else None,
                   "end": rss[-1] if rss else None},
        "rss_growth_after_20pct": round(growth, 4),
        "timeline": t.samples[::max(1, len(t.samples) // 20)] + t.samples[-1:],  # t, rss_mb, cache_mb, queue_depth
        "queue_depth": {"max": max(depths) if depths else None,
                        "mean": round(sum(depths) / len(depths), 2) if depths else None},
    }


def checks(summary: dict) -> list[str]:
    """The failed checks (empty: all passed)."""
    failed = []
    if summary["status_500"]:
        failed.append(f"{summary['status_500']} responses with status 500")
    if summary["hung"]:
        failed.append(f"{summary['hung']} hung requests")
    if summary["bad_not_4xx"]:
        failed.append(f"bad requests not answered 4xx: {summary['bad_not_4xx']}")
    if summary["seconds"] >= 300 and not summary["rss_growth_after_20pct"] < 0.10:
        failed.append(f"RSS grew {summary['rss_growth_after_20pct']:.1%} after the first 20% of the run")
    return failed


def run(model: Path, seconds: float, clients: int, max_doc: int, bad_every: int = 20, reload_every: float = 60.0,
        seed: int = 0, **settings: str) -> dict:
    """The whole soak against a server started here; returns the summary with its failed checks."""
    with tempfile.TemporaryDirectory(prefix="codelstm-soak-") as tmp:
        models = Path(tmp)
        for name in ("a", "b"):  # two copies to reload in turn
            shutil.copytree(model, models / name, ignore=shutil.ignore_patterns("last", "corpus", "*.png"))
        with soak_server(models / "a", models, **settings) as (url, pid):
            tally = asyncio.run(soak(url, pid, seconds, clients, max_doc, bad_every, reload_every, seed))
    summary = summarise(tally, seconds)
    summary["failed_checks"] = checks(summary)
    return summary


def main() -> int:
    from codelstm.paths import DEFAULT_MODEL

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="checkpoint folder (default: the bundled model)")
    p.add_argument("--minutes", type=float, default=10.0, help="how long to run (default 10)")
    p.add_argument("--clients", type=int, default=32, help="simulated editors (default 32)")
    p.add_argument("--max-doc-bytes", type=int, default=1_000_000, help="largest document (default 1 MB)")
    p.add_argument("--bad-every", type=int, default=20, help="one fuzzed bad request in this many (default 20)")
    p.add_argument("--reload-every", type=float, default=60.0, help="seconds between model reloads (default 60)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="also write the summary here")
    args = p.parse_args()
    if not 0 < args.minutes <= 60 or not 1 <= args.clients <= 256:
        p.error("--minutes must be in (0, 60] and --clients in [1, 256]")
    summary = run(args.model, args.minutes * 60, args.clients, args.max_doc_bytes, args.bad_every,
                  args.reload_every, args.seed)
    text = json.dumps(summary, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    for failure in summary["failed_checks"]:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if summary["failed_checks"] else 0


if __name__ == "__main__":
    sys.exit(main())
