"""Data-parallel training under torchrun: 2 CPU processes with gloo against one process on the same batch."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

ARGS = ["--steps", "12", "--hidden", "32", "--layers", "1", "--embed", "8", "--seq-len", "32", "--lr", "0.01",
        "--eval-interval", "6", "--threads", "1", "--quiet", "--device", "cpu"]


def train_losses(out) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
            if "loss" in r}


def test_two_gloo_ranks_match_one_process(tiny_corpus, tmp_path):
    ddp_out, single_out = tmp_path / "ddp", tmp_path / "single"
    ddp = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "codelstm.cli", "train", "--data", str(tiny_corpus), "--out", str(ddp_out), "--lanes", "4", *ARGS],
        capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    result = json.loads(ddp.stdout[ddp.stdout.index("{"):])
    assert result["world_size"] == 2 and result["weights_agree_across_ranks"] is True
    single = subprocess.run(
        [sys.executable, "-m", "codelstm.cli", "train", "--data", str(tiny_corpus), "--out", str(single_out),
         "--lanes", "8", *ARGS], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert single.returncode == 0, single.stderr
    a, b = train_losses(ddp_out), train_losses(single_out)
    assert a.keys() == b.keys() and len(a) >= 2
    for step in a:
        assert abs(a[step] - b[step]) < 1e-3 * max(1.0, b[step]), (step, a[step], b[step])
    assert a[max(a)] < a[min(a)]  # and it trained
    meta = json.loads((ddp_out / "config.json").read_text())["training"]
    assert meta["world_size"] == 2 and meta["chars_seen"] == 12 * 8 * 32
    assert not (ddp_out / "rank1").exists()
