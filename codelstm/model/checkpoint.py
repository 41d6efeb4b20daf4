"""Checkpoint folders (SPEC section 4): config.json + model.safetensors. Never unpickles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from codelstm.model.config import VOCAB, ModelConfig
from codelstm.model.files import atomic_write
from codelstm.model.network import ByteLM

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


class CheckpointError(Exception):
    """A checkpoint that cannot be used; the message is one line meant for the user."""


def save_checkpoint(
    path: str | Path, model: ByteLM, metadata: dict[str, Any] | None = None, dtype: torch.dtype = torch.float32
) -> Path:
    """Write a checkpoint folder atomically enough that a crash never leaves a half-written weights file."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    config = {
        "format": "codelstm-checkpoint/1",
        "vocabulary": VOCAB,
        "architecture": model.config.to_dict(),
        "parameters": model.num_parameters(),
        "dtype": str(dtype).removeprefix("torch."),
        "training": metadata or {},
    }
    atomic_write(path / WEIGHTS_FILE, lambda tmp: save_file(tensors, tmp))
    atomic_write(path / CONFIG_FILE, lambda tmp: Path(tmp).write_text(json.dumps(config, indent=2) + "\n"))
    return path


def read_config(path: str | Path) -> dict[str, Any]:
    """The parsed config.json of a checkpoint folder, validated enough to build the model."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if not path.is_dir():
        raise CheckpointError(f"a checkpoint is a folder with {CONFIG_FILE} and {WEIGHTS_FILE}: {path}")
    cfg_path = path / CONFIG_FILE
    if not cfg_path.is_file():
        raise CheckpointError(f"checkpoint {path} has no {CONFIG_FILE}")
    try:
        config = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"checkpoint {path}: {CONFIG_FILE} is not valid JSON ({e})") from None
    if not isinstance(config, dict) or config.get("vocabulary") != VOCAB:
        raise CheckpointError(f"checkpoint {path}: vocabulary is not {VOCAB!r}")
    return config


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[ByteLM, dict[str, Any]]:
    """Rebuild the model from its stored arguments and load float32 weights; returns (model in eval mode, config)."""
    path = Path(path)
    config = read_config(path)
    try:
        model_config = ModelConfig.from_dict(config.get("architecture") or {})
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path}: unsupported architecture ({e})") from None
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"checkpoint {path} has no {WEIGHTS_FILE}")
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path}: {WEIGHTS_FILE} is corrupt ({str(e).splitlines()[0]})") from None
    model = ByteLM(model_config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise CheckpointError(
            f"checkpoint {path}: weights do not match its architecture (missing {missing[:3]}, unexpected {extra[:3]})"
        )
    for name, tensor in tensors.items():
        if tensor.shape != expected[name].shape:
            raise CheckpointError(
                f"checkpoint {path}: {name} has shape {tuple(tensor.shape)}, "
                f"architecture needs {tuple(expected[name].shape)}"
            )
    model.load_state_dict({k: v.float() for k, v in tensors.items()})
    model.eval()
    return model.to(device), config
