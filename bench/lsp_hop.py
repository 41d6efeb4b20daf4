"""Added latency of the LSP hop: textDocument/completion through `codelstm lsp` vs the same request
sent straight to the HTTP service.

Usage: python bench/lsp_hop.py [--model PATH] [--requests N]

Both paths type through the same held-out file one character at a time with their own cached
document, alternating, so they see the same load; the difference of medians is the hop's cost.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time

import httpx
from lsprotocol import types
from pygls.lsp.client import LanguageClient

from common import ROOT, held_out_texts, server


async def run(url: str, text: str, requests: int) -> tuple[list[float], list[float]]:
    client = LanguageClient("codelstm-bench", "1")
    await client.start_io(sys.executable, "-m", "codelstm.cli", "lsp", cwd=str(ROOT))
    await client.initialize_async(types.InitializeParams(
        capabilities=types.ClientCapabilities(),
        initialization_options={"serverUrl": url, "timeoutMs": 10000}))
    client.initialized(types.InitializedParams())
    uri = "file:///bench/example.py"
    start = 2000
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text[:start])))
    direct, via_lsp = [], []
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for i in range(requests + 1):
            prefix = text[: start + i]
            t0 = time.perf_counter()
            r = await http.post("/v1/complete", json={"prefix": prefix, "document_id": "bench-direct",
                                                      "mode": "token", "n": 5, "max_chars": 48})
            r.raise_for_status()
            t1 = time.perf_counter()
            if i:
                client.text_document_did_change(types.DidChangeTextDocumentParams(
                    types.VersionedTextDocumentIdentifier(uri=uri, version=i + 1),
                    [types.TextDocumentContentChangeWholeDocument(text=prefix)]))
            lines = prefix.split("\n")
            t2 = time.perf_counter()
            await client.text_document_completion_async(types.CompletionParams(
                types.TextDocumentIdentifier(uri=uri), types.Position(len(lines) - 1, len(lines[-1].encode("utf-16-le")) // 2)))
            t3 = time.perf_counter()
            if i:  # the first of each is cold
                direct.append((t1 - t0) * 1000)
                via_lsp.append((t3 - t2) * 1000)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return direct, via_lsp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--requests", type=int, default=60)
    args = parser.parse_args()
    text = max(held_out_texts(), key=len)
    with server(args.model) as url:
        direct, via_lsp = asyncio.run(run(url, text, args.requests))
    d, l = statistics.median(direct), statistics.median(via_lsp)
    print(f"token mode, typing, {len(direct)} requests each: direct HTTP p50 {d:.1f} ms, through LSP p50 {l:.1f} ms, "
          f"added {l - d:.1f} ms")


if __name__ == "__main__":
    main()
