"""The neuron explorer: its page (GET /explore) and data (activations, find neurons, synthetic task models).

Thin HTTP layer over `codelstm.explorer` and `codelstm.model.activations`: it resolves the `model` field to
a network, enforces the size and index limits with clear 4xx errors, and runs all torch work in a thread.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse

from codelstm.explorer import tasks
from codelstm.explorer.features import CODE_FEATURES, FEATURES, compute_features
from codelstm.explorer.neurons import rank_neurons
from codelstm.explorer.workbench import TracerFailed, TrainingBusy, TrainingFailed, Workbench
from codelstm.model import ByteLM
from codelstm.model.activations import GateMismatch, TraceError, supported_quantities
from codelstm.server.deps import ApiKey, ServiceDep, SettingsDep, TrainerKey
from codelstm.server.errors import APIError
from codelstm.server.schemas import (ActivationsRequest, ActivationsResponse, ExploreModelOut, NeuronsRequest,
                                     NeuronsResponse, TrainTaskRequest)
from codelstm.server.service import CompletionService
from codelstm.server.settings import ServerSettings

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
TASK_PREFIX = "task:"
DECIMALS = 4  # values leave rounded: plenty for colours and correlations, a third of the JSON
MAX_VALUES = 1 << 22  # per /v1/activations response (~35 MB of JSON): all of a 384-unit layer's 6 quantities
                      # for 1820 bytes, or one quantity of 512 units for the default 8192 bytes

page = APIRouter(tags=["explorer"])
router = APIRouter(prefix="/v1", tags=["explorer"], dependencies=[ApiKey])


def get_workbench(request: Request) -> Workbench:
    return request.app.state.workbench


WorkbenchDep = Annotated[Workbench, Depends(get_workbench)]


@page.get("/explore", include_in_schema=False)
async def explore_page() -> FileResponse:
    """The explorer page (static, no CDN); its requests carry the API key typed into it."""
    return FileResponse(STATIC_DIR / "explore.html", media_type="text/html")


# -- resolving the `model` field -------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """The network a request names, with what the page needs to know about it."""

    id: str  # "served" or "task:NAME"
    name: str  # what responses call it
    model: ByteLM
    task: str | None  # the synthetic task it was trained on, if any


def _resolve(model_id: str | None, service: CompletionService, workbench: Workbench) -> Target:
    """Blocking (a quantised served model's float weights may have to be read): call it in a thread."""
    if model_id in (None, "", "served"):
        loaded = service.loaded
        model = loaded.engine.model
        if service.settings.quantize != "none" or model.dtype != torch.float32:  # int8 weights have no gates to
            # read, bfloat16 ones too few bits for the gate check: use the checkpoint's float32 weights
            model = workbench.float_model(loaded, loaded.path)
        return Target("served", loaded.name, model, (loaded.config.get("training") or {}).get("task"))
    if model_id.startswith(TASK_PREFIX):
        name = model_id[len(TASK_PREFIX):]
        if name not in tasks.TASKS:
            raise APIError(422, "invalid_request", f"model: unknown task {name!r}; tasks: {', '.join(tasks.TASKS)}")
        trained = workbench.trained.get(name)
        if trained is None:
            raise APIError(409, "not_trained", f"task model {name!r} is not trained yet: "
                                               f"POST /v1/explore/tasks/{name}/train first")
        return Target(model_id, model_id, trained.model, name)  # named by its id: "task:NAME"
    raise APIError(422, "invalid_request", f"model: {model_id!r} is neither null (the served model) nor "
                                           f"'task:NAME' (NAME one of {', '.join(tasks.TASKS)})")


def _encode(text: str, settings: ServerSettings) -> bytes:
    data = text.encode("utf-8", errors="surrogatepass")
    if len(data) > settings.explore_max_chars:
        raise APIError(413, "payload_too_large", f"text is {len(data)} UTF-8 bytes; the explorer reads at most "
                                                 f"{settings.explore_max_chars} (CODELSTM_EXPLORE_MAX_CHARS)")
    return data


def _check_layer(layer: int, model: ByteLM) -> None:
    n = model.config.num_layers
    if not 0 <= layer < n:
        raise APIError(422, "invalid_request", f"layer {layer} does not exist: the model has {n} "
                                               f"layer{'s' if n > 1 else ''} (0..{n - 1})")


def _check_quantities(asked: list[str], model: ByteLM) -> None:
    have = supported_quantities(model)
    missing = [q for q in asked if q not in have]
    if missing:
        raise APIError(422, "invalid_request", f"quantities {missing} do not exist in a {model.config.cell.upper()} "
                                               f"cell, which has {list(have)}; c and the gates i, f, o, g are "
                                               "LSTM quantities")


def _trace(workbench: Workbench, model: ByteLM, data: bytes):
    try:
        return workbench.trace(model, data)
    except TraceError as e:
        raise APIError(422, "invalid_request", str(e)) from None
    except GateMismatch as e:
        raise APIError(500, "gate_mismatch", str(e)) from None
    except TracerFailed as e:
        raise APIError(503, "tracer_failed", str(e), {"Retry-After": "1"}) from None


def _rounded(values: np.ndarray) -> list:
    return (np.round(values.astype(np.float64), DECIMALS) + 0.0).tolist()  # + 0.0: no "-0.0" in the JSON


# -- endpoints ------------------------------------------------------------------------------------

@router.post("/activations", response_model=ActivationsResponse)
async def activations(body: ActivationsRequest, service: ServiceDep, settings: SettingsDep,
                      workbench: WorkbenchDep) -> JSONResponse:
    """Per-byte h, c and gates of one layer for the requested neurons, stepped through the real model."""
    data = _encode(body.text, settings)

    def compute() -> dict[str, Any]:
        t0 = time.perf_counter()
        target = _resolve(body.model, service, workbench)
        model = target.model
        _check_layer(body.layer, model)
        hidden = model.config.hidden_size
        neurons = list(range(hidden)) if body.neurons is None else body.neurons
        bad = [j for j in neurons if not 0 <= j < hidden]
        if bad:
            raise APIError(422, "invalid_request", f"neuron {bad[0]} does not exist: layer {body.layer} has "
                                                   f"{hidden} neurons (0..{hidden - 1})")
        quantities = list(body.quantities or supported_quantities(model))
        _check_quantities(quantities, model)
        count = len(quantities) * len(neurons) * len(data)
        if count > MAX_VALUES:
            raise APIError(422, "invalid_request", f"that is {count} values ({len(quantities)} quantities x "
                                                   f"{len(neurons)} neurons x {len(data)} bytes); at most "
                                                   f"{MAX_VALUES} per request: ask for fewer neurons or quantities")
        result = _trace(workbench, model, data)
        layer = result.layers[body.layer]
        values = {q: _rounded(layer[q][:, neurons].T.numpy()) for q in quantities}
        return {"model": target.name,
                "cell": model.config.cell, "layer": body.layer, "num_layers": model.config.num_layers,
                "hidden_size": hidden, "bytes": len(data), "neurons": neurons, "values": values,
                "max_gate_error": result.max_gate_error,
                "timing_ms": round((time.perf_counter() - t0) * 1000, 1)}

    return JSONResponse(await asyncio.to_thread(compute))


def _default_features(task: str | None) -> list[str]:
    return list(tasks.RECIPES[task].features) if task in tasks.RECIPES else list(CODE_FEATURES)


@router.post("/neurons", response_model=NeuronsResponse)
async def find_neurons(body: NeuronsRequest, service: ServiceDep, settings: SettingsDep,
                       workbench: WorkbenchDep) -> JSONResponse:
    """Rank neurons by |Pearson r| with features of the text (indentation, brackets, strings, ...)."""
    data = _encode(body.text, settings)
    unknown = [f for f in body.features or [] if f not in FEATURES]
    if unknown:
        raise APIError(422, "invalid_request", f"features: unknown {unknown}; known: {', '.join(FEATURES)}")

    def compute() -> dict[str, Any]:
        t0 = time.perf_counter()
        target = _resolve(body.model, service, workbench)
        model = target.model
        layers = list(range(model.config.num_layers)) if body.layers is None else body.layers
        for k in layers:
            _check_layer(k, model)
        _check_quantities(body.quantities, model)
        names = body.features or _default_features(target.task)
        features = compute_features(data, names, body.language)
        result = _trace(workbench, model, data)
        ranked = rank_neurons(result, features, layers, body.quantities, body.top)
        return {"model": target.name,
                "bytes": len(data), "layers": layers, "quantities": body.quantities,
                "features": [{"name": r.feature, "description": FEATURES[r.feature].description,
                              "defined": r.defined, "constant": r.constant,
                              "values": [None if math.isnan(v) else round(v, DECIMALS) for v in features[r.feature]],
                              "best": [{"layer": s.layer, "quantity": s.quantity, "neuron": s.neuron,
                                        "r": round(s.r, DECIMALS)} for s in r.best]}
                             for r in ranked],
                "timing_ms": round((time.perf_counter() - t0) * 1000, 1)}

    return JSONResponse(await asyncio.to_thread(compute))


def _describe_task(name: str, workbench: Workbench) -> dict[str, Any]:
    trained = workbench.trained.get(name)
    model = trained.model if trained else None
    return {"id": TASK_PREFIX + name, "name": name, "cell": model.config.cell if model else None,
            "num_layers": model.config.num_layers if model else None,
            "hidden_size": model.config.hidden_size if model else None,
            "quantities": list(supported_quantities(model)) if model else [],
            "task": name, "description": tasks.RECIPES[name].description, "trained": trained is not None,
            "train_seconds": round(trained.seconds, 1) if trained else None,
            "steps": trained.steps if trained else None,
            "exact_match": trained.exact_match if trained else None,
            "sample": tasks.sample_text(name), "features": _default_features(name)}


@router.get("/explore/models", response_model=list[ExploreModelOut])
async def explore_models(service: ServiceDep, workbench: WorkbenchDep) -> list[dict[str, Any]]:
    """The models the explorer can show: the served one, then each synthetic task (trained or not)."""
    loaded = service.loaded
    cfg = loaded.config.get("architecture") or {}
    task = (loaded.config.get("training") or {}).get("task")
    served = {"id": "served", "name": loaded.name, "cell": cfg.get("cell"), "num_layers": cfg.get("num_layers"),
              "hidden_size": cfg.get("hidden_size"),
              "quantities": list(supported_quantities(loaded.engine.model)) if cfg.get("cell") else [],
              "task": task, "description": "the model this service completes with", "trained": True,
              "train_seconds": None, "steps": (loaded.config.get("training") or {}).get("steps"),
              "exact_match": (loaded.config.get("training") or {}).get("exact_match"),
              "sample": tasks.sample_text(task) if task in tasks.TASKS else None,
              "features": _default_features(task)}
    return [served, *(_describe_task(name, workbench) for name in tasks.TASKS)]


@router.post("/explore/tasks/{name}/train", response_model=ExploreModelOut, dependencies=[TrainerKey])
async def train_task(name: str, workbench: WorkbenchDep, body: TrainTaskRequest | None = None) -> dict[str, Any]:
    """Train a synthetic experiment's model (seconds; one at a time) and keep it as model "task:NAME".

    Admin key needed when API keys are configured or the server is reachable from other machines."""
    if name not in tasks.TASKS:
        raise APIError(404, "not_found", f"unknown task {name!r}; tasks: {', '.join(tasks.TASKS)}")
    body = body or TrainTaskRequest()
    try:
        await asyncio.to_thread(workbench.train, name, body.steps, body.seed)
    except TrainingBusy as e:
        raise APIError(409, "busy", str(e), {"Retry-After": "5"}) from None
    except TrainingFailed as e:
        raise APIError(500, "training_failed", str(e)) from None
    return _describe_task(name, workbench)
