"""A retraining report a team can read at a glance: did the new model beat the one it started from?

Writes OUT/report.md with per-language BPC and keystrokes saved on the team's held-out files for the
init model and the retrained one, corpus statistics, the loss curve (loss.png) and a comparison
chart (report.png).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from codelstm.model import load_checkpoint
from codelstm.training.data import open_stream, split_documents
from codelstm.training.metrics import evaluate


def held_out_by_language(corpus: Path) -> dict[str, list[bytes]]:
    """The validation documents grouped by language (val.bin holds them in manifest order)."""
    manifest = json.loads((corpus / "manifest.json").read_text())
    langs = [f["language"] for f in manifest["files"] if f["split"] == "val"]
    docs = split_documents(open_stream(corpus / "val.bin"))
    grouped: dict[str, list[bytes]] = {}
    for lang, doc in zip(langs, docs):
        grouped.setdefault(lang, []).append(doc)
    return grouped


def compare(init: Path | None, trained: Path, corpus: Path, sample_bytes: int = 1000,
            sample_files: int = 6) -> dict[str, dict[str, Any]]:
    """{language: {"files", "bytes", "before": {...}, "after": {...}}} on the held-out files."""
    models = {"after": load_checkpoint(trained)[0]}
    if init is not None:
        models["before"] = load_checkpoint(init)[0]
    rows: dict[str, dict[str, Any]] = {}
    for lang, docs in sorted(held_out_by_language(corpus).items()):
        row: dict[str, Any] = {"files": len(docs), "bytes": sum(map(len, docs))}
        for label, model in models.items():
            r = evaluate(model, docs, sample_bytes=sample_bytes, max_sample_files=sample_files)
            row[label] = {"bpc": r.bpc, "keystrokes_saved": r.keystrokes_saved, "top1": r.top1}
        rows[lang] = row
    return rows


def write_report(out: Path, corpus: Path, init: Path | None, rows: dict[str, dict[str, Any]],
                 train_result: dict[str, Any]) -> Path:
    manifest = json.loads((corpus / "manifest.json").read_text())
    lines = [f"# Retraining report: {out.name}", ""]
    verdicts = []
    for lang, row in rows.items():
        if "before" in row:
            gain = row["before"]["bpc"] - row["after"]["bpc"]
            verdicts.append(f"{lang}: BPC {row['before']['bpc']:.3f} -> {row['after']['bpc']:.3f} "
                            f"({'better' if gain > 0 else 'worse'} by {abs(gain):.3f})")
    if verdicts:
        lines += ["**Verdict:** " + "; ".join(verdicts), ""]
    lines += [f"Initialised from `{init}`." if init else "Trained from scratch.",
              f"Steps {train_result.get('steps')}, characters seen {train_result.get('chars_seen'):,}, "
              f"training time {train_result.get('elapsed_s', 0) / 60:.1f} min.", "",
              "## Held-out files of the team's repositories", "",
              "| language | files | bytes | BPC before | BPC after | keystrokes saved before | after |",
              "|---|---|---|---|---|---|---|"]
    for lang, row in rows.items():
        b, a = row.get("before"), row["after"]
        lines.append(f"| {lang} | {row['files']} | {row['bytes']:,} | {b['bpc']:.3f} | {a['bpc']:.3f} | "
                     f"{b['keystrokes_saved']:.1%} | {a['keystrokes_saved']:.1%} |" if b else
                     f"| {lang} | {row['files']} | {row['bytes']:,} | - | {a['bpc']:.3f} | - | "
                     f"{a['keystrokes_saved']:.1%} |")
    lines += ["", "![before and after](report.png)", "", "## Loss curve", "", "![loss curve](loss.png)", "",
              "## Corpus", "", "| split | files | bytes |", "|---|---|---|"]
    for split, st in manifest["splits"].items():
        lines.append(f"| {split} | {st['files']} | {st['bytes']:,} |")
    lines += ["", "| skipped because | files |", "|---|---|"]
    lines += [f"| {reason} | {count} |" for reason, count in manifest["skipped"].items() if count]
    _plot(out / "report.png", rows)
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    (out / "report.json").write_text(json.dumps({"languages": rows, "train": train_result}, indent=2, default=str))
    return path


def _plot(path: Path, rows: dict[str, dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    langs = list(rows)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, key, title in ((axes[0], "bpc", "BPC (lower is better)"),
                           (axes[1], "keystrokes_saved", "keystrokes saved (higher is better)")):
        xs = range(len(langs))
        if all("before" in rows[l] for l in langs):
            ax.bar([x - 0.2 for x in xs], [rows[l]["before"][key] for l in langs], width=0.4, label="before")
        ax.bar([x + 0.2 for x in xs], [rows[l]["after"][key] for l in langs], width=0.4, label="after")
        ax.set_xticks(list(xs), langs)
        ax.set_title(title)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
