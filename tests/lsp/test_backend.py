"""The language server's HTTP client against a real server: a request superseded by a newer one for the
same document answers nothing, quietly (it is not a backend failure, so no warning is shown)."""

from __future__ import annotations

import asyncio

from codelstm.lsp.backend import HttpBackend
from tests.conftest import running_server
from tests.server.conftest import big_document


def test_a_superseded_request_returns_no_items_instead_of_failing(tiny_model):
    document = big_document(400_000)  # a cold read of seconds: the second request arrives while it runs

    async def run(url: str):
        backend = HttpBackend(url)
        try:
            first = asyncio.create_task(backend.complete({"prefix": document, "document_id": "file:///a.py"}, 30))
            await asyncio.sleep(0.5)
            second = await backend.complete({"prefix": document + "x", "document_id": "file:///a.py",
                                             "mode": "token"}, 60)
            return await first, second
        finally:
            await backend.close()

    with running_server(tiny_model) as url:
        older, newer = asyncio.run(run(url))
    assert older == []
    assert isinstance(newer, list)
