"""Training end to end through the CLI: it learns, logs, checkpoints, resumes, and fails cleanly."""

from __future__ import annotations

import json
import shutil

from codelstm.model import load_checkpoint
from codelstm.model.network import native_bfloat16
from tests.conftest import run_cli

TRAIN_ARGS = ["--hidden", "32", "--layers", "1", "--embed", "8", "--lanes", "4", "--seq-len", "32",
              "--eval-interval", "10", "--threads", "1", "--quiet"]


def test_tiny_model_learns_and_records_metadata(tiny_model, tiny_corpus):
    model, config = load_checkpoint(tiny_model)
    meta = config["training"]
    manifest = json.loads((tiny_corpus / "manifest.json").read_text())
    assert meta["corpus_manifest_hash"] == manifest["hash"]
    assert meta["steps"] == 300 and meta["chars_seen"] == 300 * 8 * 64
    assert "codelstm train" in meta["command"]
    assert meta["precision"] == ("bfloat16" if native_bfloat16() else "float32")  # what auto resolved to
    # a uniform guess costs 8 bits per byte; the repetitive corpus is far more predictable once learned
    assert meta["best_val_bpc"] < 2.5
    history = [json.loads(line) for line in (tiny_model / "metrics.jsonl").read_text().splitlines()]
    vals = [r["val_bpc"] for r in history if "val_bpc" in r]
    assert vals[-1] < vals[0]
    assert (tiny_model / "loss.png").stat().st_size > 1000
    assert (tiny_model / "last" / "trainer.safetensors").is_file()


def test_resume_continues_where_it_stopped(tiny_corpus, tmp_path):
    out = tmp_path / "run"
    first = run_cli("train", "--data", str(tiny_corpus), "--out", str(out), "--steps", "20", *TRAIN_ARGS)
    assert first.returncode == 0, first.stderr
    shutil.copytree(out, tmp_path / "copy")
    second = run_cli("train", "--data", str(tiny_corpus), "--out", str(out), "--steps", "40", "--resume", *TRAIN_ARGS)
    assert second.returncode == 0, second.stderr
    info = json.loads((out / "last" / "trainer.json").read_text())
    assert info["step"] == 40
    training = json.loads((out / "last" / "config.json").read_text())["training"]
    assert "--resume" in training["command"] and "--steps 40" in training["command"]
    assert len(training["earlier_commands"]) == 1 and "--steps 20" in training["earlier_commands"][0]  # not lost
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps[-1] == 40
    # the same 40 steps in one go give nearly the same weights: data position, optimizer and carried state
    # were restored; only the first 20 steps' learning-rate schedule followed the shorter budget
    straight = run_cli("train", "--data", str(tiny_corpus), "--out", str(tmp_path / "straight"), "--steps", "40",
                       *TRAIN_ARGS)
    assert straight.returncode == 0, straight.stderr
    a, _ = load_checkpoint(out / "last")
    b, _ = load_checkpoint(tmp_path / "straight" / "last")
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert (x - y).abs().max() < 5e-3, name


def test_bfloat16_learns_as_float32_does(tiny_corpus, tmp_path):
    """bfloat16 autocast is the default wherever the CPU runs it natively; it must not cost the model."""
    best = {}
    for precision in ("float32", "bfloat16"):
        out = tmp_path / precision
        result = run_cli("train", "--data", str(tiny_corpus), "--out", str(out), "--steps", "150", "--hidden", "64",
                         "--layers", "1", "--embed", "16", "--lanes", "8", "--seq-len", "64", "--lr", "0.01",
                         "--eval-interval", "150", "--precision", precision, "--threads", "1", "--quiet")
        assert result.returncode == 0, result.stderr
        meta = json.loads((out / "config.json").read_text())["training"]
        assert meta["precision"] == precision
        best[precision] = meta["best_val_bpc"]
    assert best["float32"] < 3.0 and abs(best["bfloat16"] - best["float32"]) < 0.15, best


def test_fine_tune_from_a_checkpoint_keeps_its_architecture(tiny_model, tiny_corpus, tmp_path):
    result = run_cli("train", "--data", str(tiny_corpus), "--out", str(tmp_path / "ft"), "--init", str(tiny_model),
                     "--steps", "5", *TRAIN_ARGS)
    assert result.returncode == 0, result.stderr
    _, config = load_checkpoint(tmp_path / "ft" / "last")
    assert config["architecture"]["hidden_size"] == 64
    training = config["training"]
    assert training["init"]["path"] == str(tiny_model)
    # the lineage travels: how the starting model was trained, and every character the result has seen
    _, parent = load_checkpoint(tiny_model)
    assert training["init"]["command"] == parent["training"]["command"]
    assert training["chars_seen_total"] == 5 * 4 * 32 + parent["training"]["chars_seen"]
    assert not (tmp_path / "ft" / "mixer.json").exists()  # the starting model had none to carry over
    again = run_cli("train", "--data", str(tiny_corpus), "--out", str(tmp_path / "ft2"), "--init", str(tmp_path / "ft"),
                    "--steps", "5", *TRAIN_ARGS)
    assert again.returncode == 0, again.stderr
    _, child = load_checkpoint(tmp_path / "ft2")
    assert child["training"]["init"]["init"]["path"] == str(tiny_model)
    assert child["training"]["chars_seen_total"] == training["chars_seen_total"] + 5 * 4 * 32


def one_line_error(result) -> str:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("codelstm: error:"), result.stderr
    return lines[0]


def test_bad_inputs(tmp_path, tiny_corpus):
    assert "not found" in one_line_error(run_cli("train", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "o"),
                                                 "--steps", "1"))
    (tmp_path / "notcorpus").mkdir()
    assert "manifest" in one_line_error(run_cli("train", "--data", str(tmp_path / "notcorpus"),
                                                "--out", str(tmp_path / "o"), "--steps", "1"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{}")
    assert "vocabulary" in one_line_error(run_cli("train", "--data", str(tiny_corpus), "--init", str(tmp_path / "bad"),
                                                  "--out", str(tmp_path / "o"), "--steps", "1"))
    assert "resume" in one_line_error(run_cli("train", "--data", str(tiny_corpus), "--resume",
                                              "--out", str(tmp_path / "fresh"), "--steps", "1"))
    assert "too small" in one_line_error(run_cli("train", "--data", str(tiny_corpus), "--out", str(tmp_path / "o"),
                                                 "--steps", "1", "--lanes", "4096", "--seq-len", "1024"))


def test_validation_under_a_minutes_budget_keeps_to_its_share(tiny_corpus, tmp_path):
    """--eval-interval 1 would validate after every step; under --minutes validation may only take 5% of the time."""
    out = tmp_path / "budget"
    result = run_cli("train", "--data", str(tiny_corpus), "--out", str(out), "--minutes", "0.2",
                     *TRAIN_ARGS[:-5], "--eval-interval", "1", "--threads", "1", "--quiet")
    assert result.returncode == 0, result.stderr
    timing = json.loads(result.stdout)["timing"]
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = max(r["step"] for r in history)
    validations = [r for r in history if "val_bpc" in r]
    assert timing["validations"] == len(validations) >= 2
    assert len(validations) < steps / 10
    assert validations[-1]["step"] == steps  # the final model is always validated
    assert 0 < timing["train_steps_s"] < timing["wall_s"]
