"""Retraining on a team's repository: one command from git repository to a better model and a report."""

from __future__ import annotations

import json
import os
import random
import subprocess

import numpy as np
import pytest

from tests.conftest import free_port, run_cli

GO_TEMPLATE = """package {pkg}

import "fmt"

// {name} returns the {what} of a and b.
func {name}(a int, b int) int {{
\tif a > b {{
\t\treturn a {op} b
\t}}
\treturn b {op} a
}}

func Print{name}(a int, b int) {{
\tfmt.Println("{name}:", {name}(a, b))
}}
"""


def make_go_repo(root, files: int = 60):
    rng = random.Random(0)
    root.mkdir()
    for i in range(files):
        funcs = []
        for j in range(rng.randint(2, 5)):
            op, what = rng.choice([("+", "sum"), ("-", "difference"), ("*", "product")])
            funcs.append(GO_TEMPLATE.format(pkg=f"pkg{i % 4}", name=f"Combine{i}x{j}", what=what, op=op))
        (root / f"file{i}.go").write_text("\n".join(funcs))
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    return root


@pytest.fixture(scope="module")
def go_repo(tmp_path_factory):
    return make_go_repo(tmp_path_factory.mktemp("team") / "service")


def test_retrain_on_a_go_repository_beats_the_init_model(go_repo, tmp_path):
    out = tmp_path / "models" / "team"
    result = run_cli("train", "--repo", str(go_repo), "--init", "default", "--out", str(out), "--steps", "40",
                     "--lanes", "16", "--seq-len", "64", "--lr", "3e-3", "--warmup", "5", "--eval-interval", "20",
                     "--threads", "1", "--quiet", timeout=900)
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    go = report["languages"]["go"]
    assert go["after"]["bpc"] < go["before"]["bpc"], go
    text = (out / "report.md").read_text()
    assert "| go |" in text and "Verdict" in text and "better" in text
    for png in ("report.png", "loss.png"):
        assert (out / png).stat().st_size > 1000
    manifest = json.loads((out / "corpus" / "manifest.json").read_text())
    assert set(manifest["splits"]["train"]["languages"]) == {"go"}
    # served with the context models as the default model is: its mixer carried over, its names table
    # with the team's own qualifiers added (`fmt.Println(` is written in every file)
    from codelstm.model.mixer import MixerWeights
    from codelstm.paths import DEFAULT_MODEL

    weights = MixerWeights.load(out)
    assert weights.fitted_on["carried_from"] == str(DEFAULT_MODEL)
    np.testing.assert_allclose(weights.logits, MixerWeights.load(DEFAULT_MODEL).logits, atol=1e-9)
    assert dict(weights.names.entries_of(b"fmt.")).get(b"Println(", 0) > 0
    assert b"np." in weights.names.spans


def one_line_error(result) -> str:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("codelstm: error:"), result.stderr
    return lines[0]


def test_not_a_repository(tmp_path):
    (tmp_path / "plain").mkdir()
    assert "not a git repository" in one_line_error(
        run_cli("train", "--repo", str(tmp_path / "plain"), "--out", str(tmp_path / "o"), "--steps", "1", "--quiet"))


def test_repository_without_sources(tmp_path):
    repo = tmp_path / "docs-only"
    repo.mkdir()
    (repo / "README.md").write_text("# nothing to learn\n")
    (repo / "logo.png").write_bytes(b"\x89PNG\x00\x00")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    assert "no usable source files" in one_line_error(
        run_cli("train", "--repo", str(repo), "--out", str(tmp_path / "o"), "--steps", "1", "--quiet"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere; permissions cannot be tested")
def test_unwritable_output(go_repo, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    assert "cannot write" in one_line_error(
        run_cli("train", "--repo", str(go_repo), "--out", str(locked / "m"), "--steps", "1", "--quiet"))


def test_output_under_a_file_is_unwritable(go_repo, tmp_path):
    """Works as root too: a path below a regular file can never be created."""
    (tmp_path / "afile").write_text("x")
    assert "cannot write" in one_line_error(
        run_cli("train", "--repo", str(go_repo), "--out", str(tmp_path / "afile" / "m"), "--steps", "1", "--quiet"))


def test_publish_to_a_dead_service_keeps_the_model(tiny_corpus, tmp_path):
    out = tmp_path / "m"
    result = run_cli("train", "--data", str(tiny_corpus), "--out", str(out), "--steps", "3", "--hidden", "16",
                     "--layers", "1", "--lanes", "4", "--seq-len", "32", "--quiet",
                     "--publish", f"http://127.0.0.1:{free_port()}")
    line = one_line_error(result)
    assert "publish failed" in line and str(out) in line
    assert (out / "model.safetensors").is_file() and (out / "last" / "trainer.json").is_file()


def test_minutes_bound_a_retrain_but_for_measuring_the_new_model(go_repo, tiny_model, tmp_path):
    """The starting model is measured before training and that time is kept back, so only the new model's
    measurement (bounded by the report's fixed sample, and shown) can run past the budget."""
    out = tmp_path / "bounded"
    result = run_cli("train", "--repo", str(go_repo), "--init", str(tiny_model), "--out", str(out), "--minutes", "0.5",
                     "--lanes", "8", "--seq-len", "64", "--threads", "1", "--quiet", timeout=300)
    assert result.returncode == 0, result.stderr
    timing = json.loads(result.stdout)["timing"]
    seconds = json.loads((out / "report.json").read_text())["report_seconds"]
    assert timing["total_s"] - seconds["after"] <= 30 + 5, timing  # saving and plotting are not reserved
    assert timing["report_s"] == pytest.approx(seconds["total"], abs=0.1)
    assert seconds["before"] > 0 and timing["train_steps_s"] > 0
    assert "Report measured in" in (out / "report.md").read_text()
