"""A retraining report a team can read at a glance: did the new model beat the one it started from?

Writes OUT/report.md with per-language BPC and keystrokes saved on the team's held-out files for the
init model and the retrained one, corpus statistics, the loss curve (loss.png) and a comparison
chart (report.png). Its cost is bounded: per language, BPC on at most REPORT_BYTES of whole held-out
files (a spread sample) and the search metrics at the few positions of REPORT_SAMPLING, so that it
takes seconds, and the time it took is written into the report.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from codelstm.model.network import ByteLM
from codelstm.training.data import open_stream, split_documents, spread_sample
from codelstm.training.metrics import Sampling, evaluate

REPORT_BYTES = 100_000  # held-out bytes per language scored for BPC
REPORT_SAMPLING = Sampling(files=6, identifiers=16, typed_bytes=128, windows=2)


def held_out_by_language(corpus: Path, max_bytes: int | None = REPORT_BYTES) -> dict[str, list[bytes]]:
    """The validation documents grouped by language (val.bin holds them in manifest order), each language
    cut to whole files drawn in a fixed shuffled order up to `max_bytes`."""
    manifest = json.loads((corpus / "manifest.json").read_text())
    langs = [f["language"] for f in manifest["files"] if f["split"] == "val"]
    docs = split_documents(open_stream(corpus / "val.bin"))
    grouped: dict[str, list[bytes]] = {}
    for lang, doc in zip(langs, docs):
        grouped.setdefault(lang, []).append(doc)
    if max_bytes is not None:
        grouped = {lang: spread_sample(group, max_bytes) for lang, group in grouped.items()}
    return dict(sorted(grouped.items()))


def measure(model: ByteLM, held_out: dict[str, list[bytes]], label: str = "", progress: bool = False
            ) -> tuple[dict[str, dict[str, Any]], float]:
    """({language: {"bpc", "keystrokes_saved", "top1", ...}}, seconds it took) for one model."""
    from tqdm import tqdm

    t0 = time.perf_counter()
    out: dict[str, dict[str, Any]] = {}
    for lang in tqdm(held_out, desc=f"report {label}".strip(), unit="language", disable=not progress,
                     dynamic_ncols=True):
        r = evaluate(model, held_out[lang], REPORT_SAMPLING, progress=progress)
        out[lang] = {"bpc": r.bpc, "keystrokes_saved": r.keystrokes_saved, "top1": r.top1, "top5": r.top5,
                     "identifiers": r.identifiers, "typed_chars": r.typed_chars}
    return out, time.perf_counter() - t0


def compare(before: dict[str, Any] | None, after: dict[str, Any], held_out: dict[str, list[bytes]]
            ) -> dict[str, dict[str, Any]]:
    """{language: {"files", "bytes", "before": {...}, "after": {...}}} from two `measure` results."""
    rows: dict[str, dict[str, Any]] = {}
    for lang, docs in held_out.items():
        row: dict[str, Any] = {"files": len(docs), "bytes": sum(map(len, docs)), "after": after[lang]}
        if before is not None:
            row["before"] = before[lang]
        rows[lang] = row
    return rows


def write_report(out: Path, corpus: Path, init: Path | None, rows: dict[str, dict[str, Any]],
                 train_result: dict[str, Any], seconds: dict[str, float] | None = None) -> Path:
    """report.md, report.json and report.png; `seconds`: how long measuring took ("total", "before", "after")."""
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
              _timing_line(seconds), "",
              "## Held-out files of the team's repositories", "",
              f"BPC over held-out files drawn in a fixed order, up to {REPORT_BYTES:,} bytes per language (the last "
              "file cut there); "
              f"keystrokes saved and identifier accuracy sampled in {REPORT_SAMPLING.files} files per language at "
              f"positions spread through each whole file ({REPORT_SAMPLING.identifiers} identifier starts and "
              f"{REPORT_SAMPLING.windows} typing stretches of {REPORT_SAMPLING.typed_bytes // REPORT_SAMPLING.windows} "
              "bytes per file).", "",
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
    (out / "report.json").write_text(json.dumps({"languages": rows, "train": train_result,
                                                 "report_seconds": seconds}, indent=2, default=str))
    return path


def _timing_line(seconds: dict[str, float] | None) -> str:
    if not seconds:
        return ""
    parts = [f"{label} model {seconds[key]:.1f} s" for key, label in (("before", "starting"), ("after", "new"))
             if seconds.get(key)]
    return f"Report measured in {seconds['total']:.1f} s ({', '.join(parts)})."


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
