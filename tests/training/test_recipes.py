"""The pinned package lists of recipes/: the unseen-package evaluation set shares no package with any
corpus the bundled model was trained on, every entry is pinned, and the corpus-mix report names a
family for every package the usage list adds."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from codelstm.training.corpus import read_package_list

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
TRAINING_LISTS = [RECIPES / "default-model" / "packages.txt", RECIPES / "default-model" / "packages-usage.txt"]
UNSEEN = RECIPES / "unseen-packages" / "packages.txt"


def normalised(spec: str) -> str:
    """PEP 503 project name of NAME==VERSION (wheel files write '-' as '_')."""
    return re.sub(r"[-_.]+", "-", spec.split("==", 1)[0]).lower()


def test_every_entry_is_pinned() -> None:
    for path in [*TRAINING_LISTS, UNSEEN]:
        specs = read_package_list(path)
        assert specs, path
        for spec in specs:
            assert re.fullmatch(r"[A-Za-z0-9._-]+==[A-Za-z0-9.]+", spec), f"{path.name}: {spec!r} is not NAME==VERSION"


def test_unseen_set_shares_no_package_with_the_training_corpus() -> None:
    trained = {normalised(s) for path in TRAINING_LISTS for s in read_package_list(path)}
    unseen = {normalised(s) for s in read_package_list(UNSEEN)}
    assert len(unseen) >= 30
    assert not trained & unseen, f"in both the training corpus and the unseen set: {sorted(trained & unseen)}"
    assert "torch" not in unseen  # the recipe adds the pinned torch's sources as a folder


def test_corpus_mix_names_a_family_for_every_usage_package() -> None:
    spec = importlib.util.spec_from_file_location("corpus_mix", RECIPES / "default-model" / "corpus_mix.py")
    corpus_mix = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(corpus_mix)
    for entry in read_package_list(TRAINING_LISTS[1]):
        name, version = entry.split("==")
        wheel_dir = f"pypi/{normalised(entry).replace('-', '_')}-{version}/mod.py"
        assert corpus_mix.family_of(wheel_dir) != "library internals (packages.txt)", entry
    assert corpus_mix.family_of("pypi/requests-2.34.2/requests/api.py") == "library internals (packages.txt)"
    assert corpus_mix.family_of("torch/nn/modules/linear.py").startswith("torch")
    assert corpus_mix.family_of("python3.11/argparse.py") == "standard library"
