"""Synthetic experiments in the explorer: trained in seconds by the service or the CLI, and explored alike."""

from __future__ import annotations

import json

import httpx
import pytest

from codelstm.explorer.tasks import sample_text
from codelstm.model import load_checkpoint
from tests.conftest import run_cli, running_server


def test_counting_model_learns_in_seconds(counting):
    assert counting["id"] == "task:counting" and counting["trained"]
    assert counting["exact_match"] >= 0.95, counting  # completes a^N X with exactly N b's
    assert counting["train_seconds"] < 60 and counting["steps"] == 700
    assert (counting["cell"], counting["num_layers"], counting["hidden_size"]) == ("lstm", 1, 10)


def test_counting_model_has_a_counting_cell(client, counting):
    """Chen's counting neuron, found rather than eyeballed: a cell whose value follows a's read minus b's
    written (up through a^N, down through b^N), |r| >= 0.8 over 30 examples."""
    r = client.post("/v1/neurons", json={"text": sample_text("counting", 30), "model": "task:counting",
                                         "quantities": ["c"], "top": 3})
    assert r.status_code == 200, r.text
    ranking = {f["name"]: f for f in r.json()["features"]}
    assert list(ranking) == ["a_minus_b", "a_count", "column"]  # the task's features by default
    best = ranking["a_minus_b"]["best"][0]
    assert best["quantity"] == "c" and abs(best["r"]) >= 0.8, best
    # and its activations are served for that neuron like any other model's
    acts = client.post("/v1/activations", json={"text": "aaaXbbb\n", "model": "task:counting",
                                                "neurons": [best["neuron"]], "quantities": ["c"]}).json()
    c = acts["values"]["c"][0]
    sign = 1 if best["r"] > 0 else -1
    assert sign * c[2] > sign * c[0] and sign * c[5] < sign * c[3]  # climbs through the a's, falls through the b's


def test_cli_trains_a_servable_task_checkpoint(tmp_path):
    out = tmp_path / "state"
    result = run_cli("explore", "train-task", "state", "--out", str(out), "--steps", "30", "--quiet")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["task"] == "state" and summary["steps"] == 30 and 0 <= summary["exact_match"] <= 1
    model, config = load_checkpoint(out)
    assert config["training"]["task"] == "state" and config["training"]["steps"] == 30
    assert config["training"]["command"].startswith("codelstm explore train-task state")
    with running_server(out) as url:
        served = httpx.get(f"{url}/v1/explore/models", timeout=30).json()[0]
        assert served["task"] == "state" and served["features"] == ["first_letter", "column"]
        assert served["sample"] == sample_text("state")
        r = httpx.post(f"{url}/v1/neurons", json={"text": served["sample"]}, timeout=60)
        assert r.status_code == 200 and [f["name"] for f in r.json()["features"]] == ["first_letter", "column"]
    ranked = run_cli("explore", "neurons", "--model", str(out), "--quiet", "--top", "2")
    assert ranked.returncode == 0, ranked.stderr
    assert "first_letter" in ranked.stdout and "L0 " in ranked.stdout


def test_cli_neurons_on_a_file(tmp_path):
    from tests.explorer.conftest import PYTHON_FILE

    report = tmp_path / "ranking.json"
    result = run_cli("explore", "neurons", str(PYTHON_FILE), "--layers", "0", "--features", "indent_depth,column",
                     "--max-bytes", "1500", "--json", str(report), "--quiet")
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    assert data["bytes"] == 1500 and [f["name"] for f in data["features"]] == ["indent_depth", "column"]
    assert all(s["layer"] == 0 for f in data["features"] for s in f["best"])


@pytest.mark.parametrize("args,message", [
    (["train-task", "sorting", "--out", "x"], "invalid choice: 'sorting'"),
    (["train-task", "counting", "--out", "OUT", "--steps", "0"], "--steps must be between 10 and 100000"),
    (["neurons", "missing.py"], "file not found: missing.py"),
    (["neurons"], "give a FILE"),
    (["neurons", "README.md", "--layers", "7"], "--layers: the model has layers 0..1"),
    (["neurons", "README.md", "--features", "vibes"], "unknown features ['vibes']"),
    (["neurons", "README.md", "--model", "nowhere"], "checkpoint not found"),
])
def test_cli_bad_input_is_one_line(tmp_path, args, message):
    result = run_cli("explore", *[str(tmp_path / "out") if a == "OUT" else a for a in args])
    assert result.returncode == 2, result.stdout
    assert message in result.stderr and "Traceback" not in result.stderr


def test_help():
    for command in (["explore"], ["explore", "train-task"], ["explore", "neurons"]):
        result = run_cli(*command, "--help")
        assert result.returncode == 0 and "usage: codelstm explore" in result.stdout
        if command[-1] == "train-task":
            assert "counting 700" in " ".join(result.stdout.split())  # the recipe's steps
