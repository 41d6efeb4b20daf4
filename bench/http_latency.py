"""Latency, cache and batching benchmarks against a real server on loopback (SPEC section 7, issue 3).

Usage: python bench/http_latency.py [--model PATH] [--quick]
       python bench/http_latency.py --context [--model PATH] [--quick]

1. Typing latency: each client types through a held-out file, one to three characters per request,
   with its own document_id (so the state cache works as in an editor). p50/p99 client-side ms for
   token and line mode (max 64 chars) at 1, 8 and 32 concurrent clients; each client first opens its
   document with one untimed cold request, at most 4 clients at a time (as editors open files), and
   all start typing together once every document is open.
2. Cache speedup: a 4 KiB prefix read cold vs one more character typed into the cached document.
3. Batching speedup: requests/s at 32 clients with batching vs a server limited to batch size 1, for
   requests that are all cold prefixes and for clients typing into cached documents.

With --context: context models on vs off, as a ratio from one run. Two servers (CODELSTM_CONTEXT=none and
the default, which mixes the model's mixer.json in) run side by side and one typist sends each keystroke
to both in turn, so a busy machine slows both alike; the context server is asked once with the document
alone and once with a workspace (the other held-out files, up to --workspace-kb). Beside the client's p50,
the server's own (`timing_ms.compute` of the responses: the engine's work, without HTTP and queueing), so
the part HTTP on the same cores adds shows. Also the memory of the context indexes: per KB of cached
document and per MB of workspace.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import statistics
import sys
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


async def interleaved_typing(targets: dict[str, tuple[str, dict]], texts: list[str], mode: str, documents: int,
                             requests: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """One typist: per document an untimed open, then `requests` keystrokes of 1-3 characters; each keystroke
    goes to every target (url, extra body fields) in turn, in a rotating order. Returns the client's
    milliseconds per request and the server's own (`timing_ms.compute`: the engine's work, without HTTP or
    queueing), per target."""
    latencies: dict[str, list[float]] = {name: [] for name in targets}
    computes: dict[str, list[float]] = {name: [] for name in targets}
    rng = random.Random(7)
    names = list(targets)
    async with httpx.AsyncClient(timeout=60) as c:
        for d in range(documents):
            text = texts[d % len(texts)]
            pos = rng.randint(1024, max(1025, len(text) - 400))
            for name, (url, extra) in targets.items():
                body = {"prefix": text[:pos], "document_id": f"ctx-{mode}-{d}", "mode": mode, "n": 3,
                        "max_chars": 64, **extra}
                (await c.post(f"{url}/v1/complete", json=body)).raise_for_status()
            for k in range(requests):
                pos = min(len(text), pos + rng.randint(1, 3))
                for name in names[k % len(names):] + names[:k % len(names)]:
                    url, extra = targets[name]
                    body = {"prefix": text[:pos], "document_id": f"ctx-{mode}-{d}", "mode": mode, "n": 3,
                            "max_chars": 64, **extra}
                    t0 = time.perf_counter()
                    r = await c.post(f"{url}/v1/complete", json=body)
                    latencies[name].append((time.perf_counter() - t0) * 1000)
                    r.raise_for_status()
                    computes[name].append(r.json()["timing_ms"]["compute"])
                    if "workspace_id" in extra:
                        assert r.json()["usage"]["workspace"] == "used", r.json()["usage"]
    return latencies, computes


def context_main(args, texts: list[str]) -> None:
    from common import ROOT

    sys.path.insert(0, str(ROOT))
    from codelstm.commands.common import resolve_model_path
    from codelstm.model.context import ContextIndex
    from codelstm.model.mixer import MixerWeights

    documents, requests = (2, 5) if args.quick else (6, 20)
    typed, rest = texts[:documents], texts[documents:]
    workspace = []
    size = 0
    for i, t in enumerate(rest):
        if size + len(t.encode()) > args.workspace_kb * 1024:
            break
        workspace.append({"path": f"pkg/file_{i}.py", "text": t})
        size += len(t.encode())
    with server(args.model, context="none", threads="1") as plain, server(args.model, threads="1") as mixed:
        r = httpx.put(f"{mixed}/v1/workspaces/bench/documents", json={"documents": workspace}, timeout=120)
        r.raise_for_status()
        targets = {"LSTM alone": (plain, {}), "+ document": (mixed, {}),
                   f"+ workspace ({size / 1024:.0f} KB)": (mixed, {"workspace_id": "bench"})}
        print("\n| mode | context | p50 ms | p99 ms | requests | p50 / LSTM alone | server compute p50 ms |\n"
              "|---|---|---|---|---|---|---|")
        for mode in ("token", "line"):
            lat, compute = asyncio.run(interleaved_typing(targets, typed, mode, documents, requests))
            base = percentile(lat["LSTM alone"], 50)
            for name, values in lat.items():
                print(f"| {mode} | {name} | {percentile(values, 50):.1f} | {percentile(values, 99):.1f} | "
                      f"{len(values)} | {percentile(values, 50) / base:.2f}x | {percentile(compute[name], 50):.1f} |",
                      flush=True)
    weights = MixerWeights.load(resolve_model_path(args.model or "default"))
    doc = max(typed, key=len).encode()
    t0 = time.perf_counter()
    index = ContextIndex.build(doc, weights.config)
    doc_s = time.perf_counter() - t0
    ws = "\0".join(d["text"] for d in workspace).encode()
    t0 = time.perf_counter()
    ws_index = ContextIndex.build(ws, weights.config)
    ws_s = time.perf_counter() - t0
    print(f"\ncontext index of a document: {index.nbytes / len(doc):.0f} bytes per byte "
          f"({index.nbytes / 2**20:.1f} MiB for {len(doc) / 1024:.0f} KB, built in {doc_s * 1000:.0f} ms); "
          f"workspace: {ws_index.nbytes / 2**20 / (len(ws) / 2**20):.0f} MiB per MiB of text "
          f"(built in {ws_s / (len(ws) / 2**20):.2f} s per MiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    parser.add_argument("--context", action="store_true", help="context models on vs off (see above)")
    parser.add_argument("--workspace-kb", type=int, default=512, help="with --context: workspace size")
    args = parser.parse_args()
    texts = held_out_texts()
    if args.context:
        context_main(args, texts)
        return
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
