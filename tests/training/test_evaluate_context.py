"""`codelstm eval --context`: the search metrics with the context models mixed in as the server mixes them,
beside the LSTM alone, at the same positions."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from codelstm.model import load_checkpoint
from codelstm.model.context import ContextConfig, ContextIndex
from codelstm.model.mixer import DocumentMixer, MixerWeights
from codelstm.model.scoring import lstm_scores_many
from codelstm.training.context_eval import PrefixMixers, evidence_for
from codelstm.training.mixer_fit import fit_logits

CONFIG = ContextConfig()


def repetitive(names: list[str], rounds: int = 8) -> bytes:
    """A module that uses a few names the tiny model never saw, over and over."""
    return "".join(f"    {a}_total = {b}_reading({a}_total, {c}_limit)\n    {c}_limit.{b}_reading()\n"
                   for _ in range(rounds) for a, b, c in zip(names, names[1:] + names[:1], names[2:] + names[:2])
                   ).encode()


FIT_FILES = [repetitive(["quokka", "zephyr", "marmot", "wombat"]), repetitive(["lumen", "pixie", "gadget", "vortex"])]
EVAL_FILE = repetitive(["fjord", "quasar", "nimbus", "grotto"])


def copy_with_fitted_mixer(model_folder, folder):
    """A copy of the checkpoint at `model_folder` in `folder`, with a mixer.json fitted on repetitive files
    of names it never saw (the way `mixer fit` fits one). The copy's folder."""
    shutil.copytree(model_folder, folder)
    model, _ = load_checkpoint(folder)
    weights = MixerWeights(CONFIG, online_rate=0.0)
    evidence = [evidence_for(f, s, weights) for f, s in zip(FIT_FILES, lstm_scores_many(model, FIT_FILES))]
    fit_logits(weights, evidence, steps=150).save(folder)
    return folder


@pytest.fixture(scope="module")
def model_with_mixer(tiny_model, tmp_path_factory):
    return copy_with_fitted_mixer(tiny_model, tmp_path_factory.mktemp("mixed") / "model")


def run_eval(*args: str) -> dict:
    """`codelstm eval` in a subprocess: its --json results."""
    with tempfile.TemporaryDirectory() as folder:
        out = f"{folder}/eval.json"
        result = subprocess.run([sys.executable, "-m", "codelstm.cli", "eval", *args, "--threads", "1", "--quiet",
                                 "--json", out], capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
        return json.loads(open(out).read())


def test_prefix_mixer_sees_what_a_mixer_over_the_prefix_alone_sees():
    """One index of the whole file, cut at each position, mixes as a fresh index of the text before it."""
    rng, shapes = np.random.default_rng(0), MixerWeights(CONFIG)
    weights = MixerWeights(CONFIG, logits=rng.normal(size=shapes.logits.shape),
                           gates={name: rng.normal(size=table.shape) for name, table in shapes.gates.items()})
    mixers = PrefixMixers(weights, EVAL_FILE, workspace=FIT_FILES[0] + b"\x00")
    workspace = ContextIndex.build(FIT_FILES[0] + b"\x00", CONFIG)
    logprobs = np.log(np.random.default_rng(1).dirichlet(np.ones(256), size=2))
    for p in (0, 1, 37, len(EVAL_FILE) // 2, len(EVAL_FILE)):
        fresh = DocumentMixer.for_document(weights, EVAL_FILE[:p], workspace=workspace)
        for generated in (b"", b"fj"):
            np.testing.assert_allclose(mixers.at(p).mix([generated, b"x"], logprobs),
                                       fresh.mix([generated, b"x"], logprobs), rtol=1e-12)


def test_document_context_raises_identifier_accuracy_on_a_file_that_repeats_its_names(model_with_mixer, tmp_path):
    path = tmp_path / "module.py"
    path.write_bytes(EVAL_FILE)
    plain = run_eval(str(path), "--model", str(model_with_mixer))
    mixed = run_eval(str(path), "--model", str(model_with_mixer), "--context", "document")
    assert plain["with_context"] is None
    ctx = mixed["with_context"]
    # the LSTM-alone row is the same with or without --context: the same positions, the same searches
    for key in ("identifiers", "top1", "top5", "identifiers_after_one", "top1_after_one", "keystrokes_saved"):
        assert mixed[key] == plain[key], key
    assert ctx["context"] == "document"
    assert ctx["identifiers"] == plain["identifiers"] >= 20
    assert ctx["identifiers_after_one"] == plain["identifiers_after_one"] > 0
    assert ctx["top1"] >= plain["top1"] + 0.3, (plain, ctx)
    assert ctx["top1_after_one"] > plain["top1_after_one"], (plain, ctx)
    assert ctx["keystrokes_saved"] > plain["keystrokes_saved"], (plain, ctx)
    assert mixed["bpc_context"] < mixed["bpc"]


def test_workspace_context_predicts_names_only_its_folder_mates_used(model_with_mixer, tmp_path):
    """Each name occurs once in the file, so the file alone cannot predict it; the other file of its folder
    uses all of them."""
    names = ["fjord", "quasar", "nimbus", "grotto", "basalt", "tundra", "sierra", "mesa"]
    lines = [f"    {a}_total = {b}_reading({c}_limit)\n"
             for a, b, c in zip(names, names[1:] + names[:1], names[2:] + names[:2])]
    (tmp_path / "module.py").write_text("".join(lines))
    (tmp_path / "helpers.py").write_text("".join(lines) * 4)
    path = str(tmp_path / "module.py")
    document = run_eval(path, "--model", str(model_with_mixer), "--context", "document")
    workspace = run_eval(path, "--model", str(model_with_mixer), "--context", "workspace")
    assert workspace["context_workspace_bytes"] == len("".join(lines) * 4) + 1
    assert workspace["with_context"]["top1"] >= document["with_context"]["top1"] + 0.3, (document, workspace)
    assert workspace["with_context"]["top1"] >= workspace["top1"] + 0.3
