"""The default corpus's mix by package family (issue 15): how much of what the model reads is which kind of code.

Usage: python recipes/default-model/corpus_mix.py [CORPUS] (default data/default-corpus-2)

Reads the corpus's manifest.json (no file contents) and prints, per family, the files and megabytes kept in
each split and the family's share of the training bytes. A file's family comes from its source: the standard
library folder, the torch folder, or the PyPI package named in its path (`pypi/NAME-VERSION/...`).
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# packages-usage.txt's packages by family; every other PyPI package is packages.txt's library internals
FAMILIES = {
    "numeric and scientific": ["numpy", "pandas", "scipy", "scikit_learn", "statsmodels", "scikit_image", "xarray",
                               "dask"],
    "plotting and images": ["matplotlib", "seaborn", "pillow"],
    "torch ecosystem": ["torchvision", "timm", "pytorch_lightning", "torchmetrics", "einops"],
    "applications (async HTTP, CLIs, settings, logging, data apps)": [
        "aiohttp", "pytest_asyncio", "typer", "loguru", "pyyaml", "pydantic_settings", "sqlmodel", "streamlit",
        "httpie"],
}
_FAMILY_OF = {name: family for family, names in FAMILIES.items() for name in names}


def family_of(name: str) -> str:
    """The family of a corpus file name (SOURCE/relative/path)."""
    source, _, rest = name.partition("/")
    if source == "torch":
        return "torch (the pinned local install)"
    if source == "pypi":
        package = re.sub(r"-[^-]+$", "", rest.split("/", 1)[0])
        return _FAMILY_OF.get(package, "library internals (packages.txt)")
    return "standard library"


def main() -> None:
    corpus = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "data" / "default-corpus-2"
    manifest = json.loads((corpus / "manifest.json").read_text())
    totals: dict[str, dict[str, list[int]]] = defaultdict(lambda: {"train": [0, 0], "val": [0, 0]})
    for f in manifest["files"]:
        cell = totals[family_of(f["name"])][f["split"]]
        cell[0] += 1
        cell[1] += f["bytes"]
    train_bytes = sum(t["train"][1] for t in totals.values())
    print(f"corpus {corpus} (hash {manifest['hash']})\n")
    print("| family | train files | train MB | val files | val MB | share of train bytes |")
    print("|---|---|---|---|---|---|")
    for family, t in sorted(totals.items(), key=lambda kv: -kv[1]["train"][1]):
        print(f"| {family} | {t['train'][0]:,} | {t['train'][1] / 1e6:.1f} | {t['val'][0]:,} | {t['val'][1] / 1e6:.1f} "
              f"| {t['train'][1] / train_bytes:.1%} |")
    print(f"| **all** | {sum(t['train'][0] for t in totals.values()):,} | {train_bytes / 1e6:.1f} "
          f"| {sum(t['val'][0] for t in totals.values()):,} | {sum(t['val'][1] for t in totals.values()) / 1e6:.1f} "
          "| 100% |")


if __name__ == "__main__":
    main()
