"""Checkpoints: safetensors + config.json round trip, and one-line errors for bad ones."""

from __future__ import annotations

import json

import pytest
import torch

from codelstm.model import ByteLM, CheckpointError, ModelConfig, load_checkpoint, save_checkpoint
from tests.conftest import run_cli


@pytest.fixture
def saved(tmp_path):
    model = ByteLM(ModelConfig(embed_dim=8, hidden_size=16, num_layers=2))
    save_checkpoint(tmp_path / "ckpt", model, {"steps": 3, "val_bpc": 4.2})
    return model, tmp_path / "ckpt"


def test_round_trip(saved):
    model, path = saved
    loaded, config = load_checkpoint(path)
    assert config["vocabulary"] == "utf8-bytes"
    assert config["architecture"]["hidden_size"] == 16
    assert config["training"]["val_bpc"] == 4.2
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        torch.testing.assert_close(a, b, msg=name)


def test_half_precision_storage_halves_the_file(tmp_path, saved):
    model, path = saved
    half = save_checkpoint(tmp_path / "half", model, dtype=torch.float16)
    assert (half / "model.safetensors").stat().st_size < 0.6 * (path / "model.safetensors").stat().st_size
    loaded, _ = load_checkpoint(half)
    assert loaded.head.weight.dtype == torch.float32


def test_corrupt_weights(saved):
    _, path = saved
    (path / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(path)


def test_truncated_weights(saved):
    _, path = saved
    data = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_architecture_mismatch(saved):
    _, path = saved
    config = json.loads((path / "config.json").read_text())
    config["architecture"]["hidden_size"] = 32
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="shape"):
        load_checkpoint(path)


@pytest.mark.parametrize("mutate,match", [
    (lambda p: (p / "config.json").write_text("{not json"), "not valid JSON"),
    (lambda p: (p / "config.json").unlink(), "no config.json"),
    (lambda p: (p / "model.safetensors").unlink(), "no model.safetensors"),
    (lambda p: (p / "config.json").write_text(json.dumps({"vocabulary": "bpe"})), "vocabulary"),
])
def test_broken_folders(saved, mutate, match):
    _, path = saved
    mutate(path)
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(path)


def test_missing_path(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope")


def test_corrupt_checkpoint_gives_one_line_cli_error(saved):
    _, path = saved
    (path / "model.safetensors").write_bytes(b"junk")
    result = run_cli("complete", "--model", str(path), "--prefix", "x")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "corrupt" in lines[0] and "Traceback" not in result.stderr
