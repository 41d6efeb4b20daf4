"""`codelstm mixer fit` from the command line: the mixer and the names table written beside a checkpoint."""

from __future__ import annotations

import shutil

from codelstm.model.mixer import MixerWeights
from tests.conftest import run_cli


def usage_corpus(tmp_path):
    """A corpus whose files call a `helpers` module's functions, some far more often than others."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(30):
        calls = "".join(f"    total += helpers.{name}(value)\n" for name in ["scale"] * 3 + ["shift"] + [f"step_{i}"])
        (src / f"use_{i}.py").write_text(f"import helpers\nfrom helpers import scale\n\n\ndef run_{i}(value):\n"
                                         f"    total = 0\n{calls}    return total\n")
    out = tmp_path / "corpus"
    result = run_cli("corpus", "build", str(src), "-o", str(out), "--val-fraction", "0.3", "--quiet")
    assert result.returncode == 0, result.stderr
    return out


def test_mixer_fit_counts_the_names_table_on_the_train_split_and_fits_on_val(tiny_model, tmp_path):
    corpus = usage_corpus(tmp_path)
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    result = run_cli("mixer", "fit", "--model", str(model), "--data", str(corpus), "--threads", "1", "--quiet")
    assert result.returncode == 0, result.stderr
    weights = MixerWeights.load(model)
    names = weights.names
    assert names.built_from["split"] == "train" and names.built_from["files"] < 30
    # `helpers.scale(` written three times per file, `shift(` once: each weighs the files that write it;
    # each `step_<i>(` is written once in all (not kept: fewer than 2 occurrences)
    entries = dict(names.entries_of(b"helpers."))
    assert entries[b"scale("] == entries[b"shift("] == names.built_from["files"]
    assert not any(e.startswith(b"step_") for e in entries)
    assert b"from helpers import " in names.spans
    # fitted where the table was not counted: the names model was present there, so its logits moved
    assert weights.fitted_on["split"] == "val"
    assert weights.gates["names"].any()


def test_mixer_fit_refuses_to_fit_on_the_files_the_names_were_counted_on(tiny_model, tmp_path):
    corpus = usage_corpus(tmp_path)
    result = run_cli("mixer", "fit", "--model", str(tiny_model), "--data", str(corpus), "--split", "all",
                     "--out", str(tmp_path / "out"), "--quiet")
    assert result.returncode != 0
    assert "names table is counted on the train split" in result.stderr
    assert not (tmp_path / "out").exists()
    result = run_cli("mixer", "fit", "--model", str(tiny_model), "--data", str(corpus), "--split", "all",
                     "--no-names", "--out", str(tmp_path / "out"), "--threads", "1", "--quiet")
    assert result.returncode == 0, result.stderr
    assert MixerWeights.load(tmp_path / "out").names is None
    assert not (tmp_path / "out" / "names.safetensors").exists()
