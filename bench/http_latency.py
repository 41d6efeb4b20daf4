"""Latency, cache and batching benchmarks against a real server on loopback (SPEC section 7, issue 3).

Usage: python bench/http_latency.py [--model PATH] [--quick]

1. Typing latency: each client types through a held-out file, one to three characters per request,
   with its own document_id (so the state cache works as in an editor). p50/p99 client-side ms for
   token and line mode (max 64 chars) at 1, 8 and 32 concurrent clients; each client first opens its
   document with one untimed cold request, at most 4 clients at a time (as editors open files), and
   all start typing together once every document is open.
2. Cache speedup: a 4 KiB prefix read cold vs one more character typed into the cached document.
3. Batching speedup: requests/s at 32 clients with batching vs a server limited to batch size 1, for
   requests that are all cold prefixes and for clients typing into cached documents.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import statistics
import time

import httpx

from common import held_out_texts, percentile, server


OPEN_AT_ONCE = 4  # documents read cold at the same time when the clients start: editors open files one by one


async def typing_client(c: httpx.AsyncClient, text: str, cid: str, mode: str, requests: int, rng: random.Random,
                        latencies: list[float], opening: asyncio.Semaphore, opened: asyncio.Barrier | None = None) -> None:
    """Open a document (one untimed cold request), then type 1-3 characters per request into it."""
    pos = rng.randint(1024, max(1025, len(text) - 400))
    body = {"prefix": text[:pos], "document_id": cid, "mode": mode, "n": 3, "max_chars": 64}
    async with opening:
        (await c.post("/v1/complete", json=body)).raise_for_status()
    if opened is not None:
        await opened.wait()
    for _ in range(requests):
        pos = min(len(text), pos + rng.randint(1, 3))
        body = {"prefix": text[:pos], "document_id": cid, "mode": mode, "n": 3, "max_chars": 64}
        t0 = time.perf_counter()
        r = await c.post("/v1/complete", json=body)
        latencies.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()


async def typing_latency(url: str, texts: list[str], mode: str, clients: int, requests: int) -> list[float]:
    latencies: list[float] = []
    rng = random.Random(clients)
    limits = httpx.Limits(max_connections=clients + 4)
    opening, opened = asyncio.Semaphore(OPEN_AT_ONCE), asyncio.Barrier(clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as c:
        await asyncio.gather(*[typing_client(c, texts[i % len(texts)], f"bench-{mode}-{clients}-{i}", mode, requests,
                                             rng, latencies, opening, opened) for i in range(clients)])
    return latencies


def cache_speedup(url: str, text: str, repeats: int = 10) -> tuple[float, float]:
    doc = text[:4096]
    cold, warm = [], []
    with httpx.Client(base_url=url, timeout=60) as c:
        for i in range(repeats):
            body = {"prefix": doc[: 4096 - i], "mode": "token", "n": 3}
            t0 = time.perf_counter()
            c.post("/v1/complete", json=body).raise_for_status()
            cold.append((time.perf_counter() - t0) * 1000)
        did = "bench-cache-doc"
        c.post("/v1/complete", json={"prefix": doc[:4000], "document_id": did, "mode": "token"}).raise_for_status()
        for i in range(repeats):
            body = {"prefix": doc[: 4001 + i], "document_id": did, "mode": "token", "n": 3}
            t0 = time.perf_counter()
            r = c.post("/v1/complete", json=body)
            r.raise_for_status()
            assert r.json()["usage"]["fed_chars"] <= 1, r.json()["usage"]
            warm.append((time.perf_counter() - t0) * 1000)
    return statistics.median(cold), statistics.median(warm)


async def throughput(url: str, texts: list[str], typing: bool, clients: int = 32, per_client: int = 6) -> float:
    """Completed line-mode requests per second with `clients` clients sending back to back.

    typing=False: each request is a fresh 256-byte prefix without document id (every byte read cold).
    typing=True: each client types into its own cached document, 1-3 characters per request; the clock
    starts once every client has opened its document.
    """
    rng = random.Random(0)
    limits = httpx.Limits(max_connections=clients + 4)

    async def cold_client(c, i):
        text = texts[i % len(texts)]
        for _ in range(per_client):
            pos = rng.randint(256, len(text) - 64)
            (await c.post("/v1/complete", json={"prefix": text[pos - 256:pos], "mode": "line", "n": 3})).raise_for_status()

    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as c:
        if typing:
            opened = asyncio.Barrier(clients + 1)
            opening = asyncio.Semaphore(OPEN_AT_ONCE)
            tasks = [asyncio.create_task(typing_client(c, texts[i % len(texts)], f"bench-throughput-{i}", "line",
                                                       per_client, rng, [], opening, opened)) for i in range(clients)]
            await opened.wait()
            t0 = time.perf_counter()
            await asyncio.gather(*tasks)
        else:
            await cold_client(c, 0)  # warm-up
            t0 = time.perf_counter()
            await asyncio.gather(*[cold_client(c, i) for i in range(clients)])
        return clients * per_client / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    args = parser.parse_args()
    texts = held_out_texts()
    requests = {1: 40, 8: 15, 32: 8} if not args.quick else {1: 5, 8: 2, 32: 1}
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {__import__('os').cpu_count()} cores; "
          f"{len(texts)} held-out files")
    with server(args.model) as url:
        print("\n| mode | clients | p50 ms | p99 ms | requests |\n|---|---|---|---|---|")
        for mode in ("token", "line"):
            for clients in (1, 8, 32):
                lat = asyncio.run(typing_latency(url, texts, mode, clients, requests[clients]))
                print(f"| {mode} | {clients} | {percentile(lat, 50):.1f} | {percentile(lat, 99):.1f} | {len(lat)} |",
                      flush=True)
        cold, warm = cache_speedup(url, max(texts, key=len))
        print(f"\ncache: 4 KiB cold {cold:.1f} ms, one more character cached {warm:.1f} ms: {cold / warm:.1f}x")
        per_client = 2 if args.quick else 15
        batched = {typing: asyncio.run(throughput(url, texts, typing, per_client=per_client)) for typing in (False, True)}
    with server(args.model, max_batch="1") as url:
        single = {typing: asyncio.run(throughput(url, texts, typing, per_client=per_client)) for typing in (False, True)}
    for typing, workload in ((False, "cold 256-byte prefixes"), (True, "typing into cached documents")):
        print(f"batching: 32 clients, line mode, {workload}: {batched[typing]:.1f} req/s batched vs "
              f"{single[typing]:.1f} req/s at batch size 1: {batched[typing] / single[typing]:.1f}x")


if __name__ == "__main__":
    main()
