"""`codelstm complete` and `codelstm eval` through the real command line."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli


def test_complete_with_prefix(tiny_model):
    result = run_cli("complete", "--model", str(tiny_model), "--prefix", "def function_3(value):\n    return ",
                     "--json", "-n", "2")
    assert result.returncode == 0, result.stderr
    completions = json.loads(result.stdout)
    assert 1 <= len(completions) <= 2 and completions[0]["text"].startswith("value")


def test_complete_at_file_position(tiny_model, tmp_path):
    src = tmp_path / "a.py"
    src.write_text("def function_3(value):\n    return \n")
    result = run_cli("complete", "--model", str(tiny_model), f"{src}:2:12", "--mode", "token", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["text"].startswith("value")


@pytest.mark.parametrize("args,message", [
    (["--prefix", "x", "nofile.py:1:1"], "either"),
    (["nofile.py:1:1"], "not found"),
    (["--prefix", "x", "-n", "99"], "-n"),
])
def test_complete_errors(tiny_model, args, message):
    result = run_cli("complete", "--model", str(tiny_model), *args)
    assert result.returncode != 0 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_eval_reports_all_metrics(tiny_model, tiny_corpus, tmp_path):
    out = tmp_path / "eval.json"
    result = run_cli("eval", "--model", str(tiny_model), "--data", str(tiny_corpus), "--json", str(out),
                     "--sample-files", "2", "--sample-bytes", "300")
    assert result.returncode == 0, result.stderr
    assert "keystrokes saved" in result.stdout and "BPC" in result.stdout
    metrics = json.loads(out.read_text())
    assert metrics["bpc"] < 2.5
    assert 0.0 <= metrics["top1"] <= metrics["top5"] <= 1.0
    assert metrics["top5"] > 0.3  # the corpus is repetitive: a trained model predicts most identifiers
    assert 0.0 < metrics["keystrokes_saved"] < 1.0


def test_help_for_every_command():
    for command in (["complete"], ["corpus", "build"], ["train"], ["eval"]):
        result = run_cli(*command, "--help")
        assert result.returncode == 0 and "usage: codelstm" in result.stdout


def test_eval_reads_a_sample_spread_over_the_packages_of_both_splits(tiny_model, tmp_path):
    """--split all --bytes-per-package: per package, files by name hash until the budget; a huge package
    gets no more room than a small one."""
    src = tmp_path / "src"
    for package, files, lines in (("big", 12, 40), ("small", 3, 4)):
        (src / package).mkdir(parents=True)
        for i in range(files):
            (src / package / f"m{i}.py").write_text("".join(f"value_{j} = {i} + {j}\n" for j in range(lines)))
    corpus = tmp_path / "corpus"
    assert run_cli("corpus", "build", str(src), "-o", str(corpus), "--val-fraction", "0.3", "--quiet").returncode == 0
    sizes = {}
    for args in ([], ["--split", "all"], ["--split", "all", "--bytes-per-package", "1000"]):
        out = tmp_path / "eval.json"
        result = run_cli("eval", "--model", str(tiny_model), "--data", str(corpus), "--sample-files", "0",
                         "--json", str(out), *args)
        assert result.returncode == 0, result.stderr
        assert "top-1 identifier accuracy" in result.stdout and "0.0%" not in result.stdout  # "-": none sampled
        metrics = json.loads(out.read_text())
        sizes[" ".join(args)] = (metrics["files"], metrics["bytes"])
    manifest = json.loads((corpus / "manifest.json").read_text())
    val = [f for f in manifest["files"] if f["split"] == "val"]
    assert sizes[""] == (len(val), sum(f["bytes"] for f in val))
    assert sizes["--split all"] == (15, sum(f["bytes"] for f in manifest["files"]))
    # big files are ~640 bytes: two reach the 1,000-byte budget; the small package's three ~60-byte files all fit
    assert sizes["--split all --bytes-per-package 1000"][0] == 2 + 3
    for args, message in ((["--bytes-per-package", "10", str(src / "big" / "m0.py")], "need --data"),
                          (["--data", str(corpus), "--bytes-per-package", "0"], "at least 1"),
                          (["--data", str(src)], "not a corpus folder (no manifest.json)"),
                          (["--data", str(tmp_path / "missing")], "corpus folder not found")):
        result = run_cli("eval", "--model", str(tiny_model), *args)
        assert result.returncode != 0 and message in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1  # one clear line, no traceback

def test_eval_breakdown_splits_the_bits_by_package_and_names_the_costliest_files(tiny_model, tmp_path):
    """--breakdown: the packages' bytes and bits add up to the whole read's, and the costliest files are listed."""
    src = tmp_path / "src"
    for package, files, text in (("plain", 4, "def function_{i}(value):\n    return value + {i}\n\n"),
                                 ("noise", 2, "qzx{i} = '%$#@!~^&*{i}' * 0x{i}f\n")):
        (src / package).mkdir(parents=True)
        for i in range(files):
            (src / package / f"m{i}.py").write_text("".join(text.format(i=i * 10 + j) for j in range(12)))
    corpus = tmp_path / "corpus"
    assert run_cli("corpus", "build", str(src), "-o", str(corpus), "--quiet").returncode == 0
    out = tmp_path / "eval.json"
    result = run_cli("eval", "--model", str(tiny_model), "--data", str(corpus), "--split", "all", "--sample-files", "0",
                     "--breakdown", "--json", str(out))
    assert result.returncode == 0, result.stderr
    metrics = json.loads(out.read_text())
    rows = {r["package"]: r for r in metrics["by_package"]}
    assert set(rows) == {"src/plain", "src/noise"}
    assert sum(r["files"] for r in rows.values()) == metrics["files"] == 6
    assert sum(r["bytes"] for r in rows.values()) == metrics["bytes"]
    assert sum(r["bpc"] * r["bytes"] for r in rows.values()) == pytest.approx(metrics["bpc"] * metrics["bytes"], rel=1e-3)
    assert sum(r["bits_share"] for r in rows.values()) == pytest.approx(1.0, abs=1e-3)
    # the model learned code like the plain package's, not the noise: the noise costs more per byte and comes first
    assert rows["src/noise"]["bpc"] > rows["src/plain"]["bpc"]
    assert metrics["by_package"][0]["package"] == "src/noise"
    listed = result.stdout.split("costliest files")[1]
    assert "src/noise/m0.py" in listed and "src/plain/m0.py" in listed
