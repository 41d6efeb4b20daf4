"""A request that fails (deadline, superseded) frees its prefix when it ends, not at a full garbage collection.

Before, the failure's traceback held the service's and the batcher's frames, which held the failure
again: reference cycles that kept every failed request's text alive until Python's rare full
collection, a 200 MB sawtooth of resident memory under `bench/soak.py`. The app runs in this process
(the only way to look at its garbage), on the real engine and tiny model.
"""

from __future__ import annotations

import gc
import threading
import time
import types

from fastapi.testclient import TestClient

from codelstm.server.main import create_app
from codelstm.server.settings import ServerSettings
from tests.server.conftest import big_document

BIG = 300_000  # characters: the tiny model needs seconds to read it, past the deadlines below


def codelstm_frames_holding_text(garbage: list) -> list[str]:
    """Frames of codelstm's code, found in reference cycles, with a local that is a whole request's text."""
    found = []
    for frame in garbage:
        if not isinstance(frame, types.FrameType) or "/codelstm/" not in frame.f_code.co_filename:
            continue
        for name, value in frame.f_locals.items():
            text = getattr(getattr(value, "request", value), "prefix", value)  # an _Item, a request, the text
            if isinstance(text, (str, bytes)) and len(text) >= BIG // 2:
                found.append(f"{frame.f_code.co_name}:{name}")
    return found


def test_failed_requests_leave_no_reference_cycle_holding_their_text(tiny_model):
    app = create_app(ServerSettings(model_path=tiny_model, threads=1, request_timeout_s=0.2,
                                    max_body_bytes=4 << 20))
    statuses: list[int] = []
    gc.collect()
    gc.disable()
    try:
        with TestClient(app) as client:
            def post(document_id: str) -> None:
                body = {"prefix": big_document(BIG), "document_id": document_id, "mode": "line"}
                statuses.append(client.post("/v1/complete", json=body).status_code)

            for i in range(3):  # past the deadline: 504
                post(f"slow-{i}")
            older = threading.Thread(target=post, args=("same",))  # superseded by the next one: 409
            older.start()
            time.sleep(0.05)
            post("same")
            older.join()
            assert statuses.count(504) >= 3 and 409 in statuses, statuses
            gc.set_debug(gc.DEBUG_SAVEALL)
            gc.collect()
            assert codelstm_frames_holding_text(gc.garbage) == []
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
