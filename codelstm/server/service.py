"""The completion service: the loaded model, its engine and cache, the batcher, and request handling."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Hashable

import torch

from codelstm.cpu import default_threads
from codelstm.model import CheckpointError, load_checkpoint
from codelstm.model.cache import StateCache
from codelstm.model.engine import EngineRequest, InferenceEngine
from codelstm.model.generate import Progress, SearchSpec
from codelstm.model.mixer import MixerWeights
from codelstm.model.workspaces import WorkspaceStore
from codelstm.model.network import native_bfloat16
from codelstm.paths import DEFAULT_MODEL
from codelstm.server.batcher import (Batcher, Cancelled, DeadlineExceeded, JobFailed, Overloaded, ShuttingDown,
                                     Superseded)
from codelstm.server.errors import APIError
from codelstm.server.logs import note_request
from codelstm.server.memory import bound_kernel_caches, trim_periodically
from codelstm.server.metrics import ServiceMetrics
from codelstm.server.schemas import CompleteRequest, CompleteResponse, CompletionOut, Timing, Usage
from codelstm.server.settings import ServerSettings

log = logging.getLogger("codelstm.server")
TRIM_EVERY_S = 5.0  # how often freed heap memory goes back to the system (codelstm/server/memory.py)


@dataclass
class LoadedModel:
    name: str
    path: Path
    config: dict[str, Any]
    engine: InferenceEngine
    context: str = "none"  # context models in use: none, document or workspace (CODELSTM_CONTEXT)


def context_mode(setting: str, path: Path) -> tuple[str, MixerWeights | None]:
    """What CODELSTM_CONTEXT means for the checkpoint at `path`: (none|document|workspace, its mixer weights)."""
    if setting == "none":
        return "none", None
    try:
        weights = MixerWeights.load(path)
    except ValueError as e:
        raise CheckpointError(str(e)) from None
    if weights is None:
        if setting != "auto":
            raise CheckpointError(f"CODELSTM_CONTEXT={setting} needs a mixer.json beside the checkpoint in {path} "
                                  "(`codelstm mixer fit`), or CODELSTM_CONTEXT=none")
        return "none", None
    return ("workspace" if setting == "auto" else setting), weights


class CompletionService:
    def __init__(self, settings: ServerSettings, metrics: ServiceMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.loaded: LoadedModel | None = None
        self.batcher: Batcher | None = None
        self.draining = False  # set on SIGTERM: new work gets 503, work in flight finishes
        self._reload_lock = asyncio.Lock()
        self._stopped = threading.Event()

    @property
    def loaded_ok(self) -> bool:
        """The model is loaded and the worker exists (it may be restarting)."""
        return self.loaded is not None and self.batcher is not None

    def readiness(self) -> str | None:
        """None when ready for new work, else why not (what /readyz answers with 503)."""
        if not self.loaded_ok:
            return "the model is not loaded yet"
        if self.draining:
            return "the server is draining before shutdown"
        if not self.batcher.alive:
            return "the batching worker is down and being restarted"
        return None

    def _load(self, path: Path, name: str) -> LoadedModel:
        model, config = load_checkpoint(path)
        context, mixer = context_mode(self.settings.context, path)
        bfloat16 = self.settings.quantize == "none" and self.compute_dtype() == torch.bfloat16
        if self.settings.quantize == "int8":
            from codelstm.model.quantize import quantize_int8

            model = quantize_int8(model)
        elif bfloat16:
            model = model.to(torch.bfloat16)
        cache = StateCache(self.settings.cache_mb << 20, self.settings.cache_interval) if self.settings.cache_mb else None
        # bfloat16 runs on oneDNN only (ATen's bfloat16 LSTM is 10x slower than its float32 one).
        engine = InferenceEngine(model, cache, cold_prefix_cap=self.settings.cold_prefix_cap,
                                 sequence_onednn=self.settings.onednn_prefill or bfloat16,
                                 step_onednn=self.settings.onednn or bfloat16,
                                 written_out_step=not self.settings.onednn,
                                 prefill_wait_s=self.settings.prefill_wait_ms / 1000, name=name, mixer=mixer)
        return LoadedModel(name, path, config, engine, context)

    def compute_dtype(self) -> torch.dtype:
        """bfloat16 where oneDNN has native kernels for it (AVX-512 BF16, AMX): on the 2-core VM a
        128-beam step takes half the time and a prefix read 55%, with the same held-out BPC, and each
        row's result is bitwise independent of its batch-mates (bench/step_time.py, BENCHMARKS.md)."""
        if self.settings.dtype == "auto":
            return torch.bfloat16 if native_bfloat16() else torch.float32
        return getattr(torch, self.settings.dtype)

    def start(self) -> None:
        """Load the configured model and start the worker (blocking: called once at start-up)."""
        bound_kernel_caches(self.settings.kernel_cache_entries)  # before the first oneDNN call
        trim_periodically(TRIM_EVERY_S, self._stopped)
        torch.set_num_threads(self.settings.threads or default_threads(reserve=1))  # cgroup quota and affinity
        torch.backends.mkldnn.enabled = self.settings.onednn
        path = self.settings.model_path or DEFAULT_MODEL
        self.loaded = self._load(path, self.settings.model_name)
        self.batcher = Batcher(self.loaded.engine, self.settings.max_queue, self.settings.max_batch,
                               self.settings.batch_window_ms / 1000, on_round=self.metrics.batch_size.observe)
        self.batcher.start()
        log.info("serving %s from %s (torch threads: %d)", self.loaded.name, path, torch.get_num_threads())

    def drain(self) -> None:
        """Stop taking new work (503 + Retry-After, /readyz 503); requests in flight go on."""
        self.draining = True

    def stop(self, grace_s: float = 0.0) -> None:
        """Let requests in flight finish for up to `grace_s`, then answer the rest 503 (idempotent)."""
        self.draining = True
        if self.batcher is not None and not self._stopped.is_set():
            self._stopped.set()
            self.batcher.stop(grace_s)

    def models_root(self) -> Path:
        return self.settings.models_dir.resolve()

    def _checkpoint_under_root(self, path: str) -> tuple[Path, str]:
        """The checkpoint folder `path` names (relative to the models folder, or absolute inside it), and
        how errors may call it: never a path outside the models folder, never whether one exists."""
        root = self.models_root()
        try:
            target = (root / path).resolve()
        except (ValueError, OSError):  # a NUL byte, a name too long for the file system, a symlink loop
            raise APIError(400, "invalid_checkpoint", "that path cannot name a folder on this server") from None
        if not target.is_relative_to(root):
            raise APIError(403, "forbidden", "reload loads only checkpoints inside the models folder "
                                             "(CODELSTM_MODELS_DIR); give a path relative to it")
        shown = target.relative_to(root).as_posix() or "."
        try:
            is_dir = target.is_dir()
        except OSError:
            is_dir = False
        if not is_dir:
            raise APIError(400, "invalid_checkpoint", f"no checkpoint folder {shown!r} in the models folder")
        return target, shown

    async def reload(self, path: str) -> LoadedModel:
        """Load a checkpoint off the event loop, then swap it in; requests in flight finish on the old one."""
        async with self._reload_lock:
            target, shown = self._checkpoint_under_root(path)
            try:
                loaded = await asyncio.to_thread(self._load, target, target.name or "model")
            except CheckpointError as e:
                raise APIError(400, "invalid_checkpoint", str(e).replace(str(target), shown)) from None
            except OSError as e:
                raise APIError(400, "invalid_checkpoint", f"cannot read checkpoint {shown!r}: "
                                                          f"{e.strerror or type(e).__name__}") from None
            self.batcher.swap_engine(loaded.engine)
            self.loaded = loaded
            log.info("reloaded model from %s", target)
            return loaded

    async def _submit(self, request: EngineRequest, key: Hashable | None, disconnected: Awaitable[None] | None,
                      on_progress: Callable[[Progress], None] | None = None):
        """The batcher's outcome, or the APIError its failure means for this client."""
        m = self.metrics.requests
        submit = asyncio.ensure_future(self.batcher.submit(request, self.settings.request_timeout_s, key, on_progress))
        watcher = asyncio.ensure_future(disconnected) if disconnected is not None else None
        try:
            if watcher is not None:
                await asyncio.wait({submit, watcher}, return_when=asyncio.FIRST_COMPLETED)
                if not submit.done():
                    submit.cancel()
                    m.labels("cancelled").inc()
                    raise APIError(499, "cancelled", "the client closed the connection")
            return await submit
        except Overloaded as e:
            m.labels("overloaded").inc()
            raise APIError(503, "overloaded", f"server busy: {e}", {"Retry-After": "1"}) from None
        except DeadlineExceeded as e:
            m.labels("timeout").inc()
            raise APIError(504, "timeout", str(e)) from None
        except Superseded as e:
            m.labels("superseded").inc()
            raise APIError(409, "superseded", str(e)) from None
        except ShuttingDown as e:
            m.labels("shutting_down").inc()
            raise APIError(503, "shutting_down", str(e), {"Retry-After": "1"}) from None
        except Cancelled as e:
            m.labels("cancelled").inc()
            raise APIError(499, "cancelled", str(e)) from None
        except JobFailed as e:
            m.labels("failed").inc()
            raise APIError(500, "internal_error", f"this completion failed ({e}); other requests were not affected") from None
        finally:
            if not submit.done():
                submit.cancel()
            if watcher is not None:
                watcher.cancel()
            # A failure's traceback holds this frame, whose `submit` holds that failure: a reference cycle
            # that kept each failed request's prefix alive until a full garbage collection (a 200 MB sawtooth
            # in bench/soak.py). Emptying the frame's locals breaks it.
            submit = watcher = request = disconnected = None

    def describe(self) -> dict[str, Any]:
        loaded = self.loaded
        return {
            "name": loaded.name,
            "path": str(loaded.path),
            "architecture": loaded.config.get("architecture"),
            "parameters": loaded.config.get("parameters"),
            "vocabulary": loaded.config.get("vocabulary"),
            "training": loaded.config.get("training"),
            "compute_dtype": str(loaded.engine.model.dtype).removeprefix("torch."),
        }

    async def _workspace(self, workspace_id: str | None, workspaces: WorkspaceStore | None,
                         owner: str | None) -> tuple[Any, str]:
        """(the workspace's context index or None, what `usage.workspace` says) for a request. A workspace
        this replica does not have for this key (never uploaded, evicted, another key's) is `missing`: the
        completion uses the document alone, and the client uploads the workspace again (SPEC section 8)."""
        if workspace_id is None:
            return None, "none"
        engine = self.loaded.engine
        if self.loaded.context != "workspace" or engine.mixer is None or workspaces is None:
            return None, "disabled"
        # built off the event loop: the first lookup after an upload indexes the whole workspace
        found, index = await asyncio.to_thread(workspaces.lookup, owner or "anonymous", workspace_id,
                                               engine.mixer.config)
        return index, "used" if found else "missing"

    async def complete(self, req: CompleteRequest, scope: str | None = None,
                       disconnected: Awaitable[None] | None = None, workspaces: WorkspaceStore | None = None,
                       owner: str | None = None,
                       on_progress: Callable[[Progress], None] | None = None) -> CompleteResponse:
        """Queue the request and wait for it. `scope` (the API key) with the document id is what a newer
        request supersedes; `disconnected` resolves when the client goes away, which cancels the job.
        `req.workspace_id` is looked up in `workspaces` among those of `owner` (the key's digest);
        `on_progress` (streaming) gets the search's decided text as it grows."""
        t0 = time.perf_counter()
        spec = SearchSpec(mode=req.mode, max_chars=req.max_chars, n=req.n, beam_width=req.beam_width,
                          stop=tuple(req.stop), suffix=req.suffix, temperature=req.temperature, seed=req.seed)
        workspace, workspace_usage = await self._workspace(req.workspace_id, workspaces, owner)
        request = EngineRequest(req.prefix.encode("utf-8"), spec, req.document_id, workspace)
        key: Hashable | None = (scope, req.document_id) if self.settings.supersede and req.document_id else None
        note_request(document=req.document_id, mode=req.mode)
        self.metrics.queue_depth.set(self.batcher.depth)
        outcome = await self._submit(request, key, disconnected, on_progress)
        result = outcome.result
        context = "none" if outcome.engine.mixer is None else "workspace" if workspace is not None else "document"
        total = (time.perf_counter() - t0) * 1000
        note_request(fed_bytes=result.fed_chars, cached_bytes=result.cached_chars, queue_ms=outcome.queue_ms,
                     compute_ms=outcome.compute_ms)
        m = self.metrics
        m.requests.labels("ok").inc()
        m.latency.labels(req.mode).observe(total / 1000)
        m.fed_chars.inc(result.fed_chars)
        m.cached_chars.inc(result.cached_chars)
        m.generated_chars.inc(result.generated_chars)
        cache = self.loaded.engine.cache
        if cache is not None:
            m.cache_hit_ratio.set(cache.stats.hits / max(cache.stats.lookups, 1))
            m.cache_bytes.set(cache.nbytes)
        return CompleteResponse(
            id=f"cmpl-{uuid.uuid4().hex[:16]}",
            model=outcome.engine.name,
            completions=[CompletionOut(text=c.text, logprob=round(c.logprob, 4), finish_reason=c.finish_reason)
                         for c in result.completions],
            usage=Usage(prefix_chars=len(req.prefix), fed_chars=result.fed_chars, cached_chars=result.cached_chars,
                        generated_chars=result.generated_chars, context=context, workspace=workspace_usage),
            timing_ms=Timing(queue=round(outcome.queue_ms, 3), compute=round(outcome.compute_ms, 3),
                             total=round(total, 3)),
        )

    async def stream(self, req: CompleteRequest, scope: str | None = None,
                     disconnected: Awaitable[None] | None = None, workspaces: WorkspaceStore | None = None,
                     owner: str | None = None) -> AsyncIterator[Progress | CompleteResponse]:
        """`complete`, yielding each `Progress` as the worker reports it, then the response (or raising its
        APIError). Closing the iterator early cancels the job."""
        queue: asyncio.Queue[Progress | None] = asyncio.Queue()
        task = asyncio.ensure_future(self.complete(req, scope, disconnected, workspaces, owner, queue.put_nowait))
        task.add_done_callback(lambda _: queue.put_nowait(None))  # after every progress: the worker sent those first
        try:
            while (progress := await queue.get()) is not None:
                yield progress
            yield task.result()
        finally:
            task.cancel()
            task = req = None  # the failure's traceback holds this frame, which held the failure: see _submit
