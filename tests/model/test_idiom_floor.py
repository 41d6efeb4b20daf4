"""A regression floor on first-minute idioms (issue 15): a few probes of bench/data/idioms.json that the bundled
model answers today. The full set is measured by bench/idioms.py; this is a floor, not a tuning target."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codelstm.model import load_checkpoint
from codelstm.model.generate import SearchSpec, complete
from codelstm.model.network import torch_threads
from codelstm.paths import DEFAULT_MODEL

IDIOMS = Path(__file__).resolve().parents[2] / "bench" / "data" / "idioms.json"
FLOOR = [  # prefixes of probes whose right name the bundled model offered first (2026-11-25)
    "import os\n\npath = os.path.",
    "import sys\n\n\ndef main():\n    sys.",
    "import re\n\npattern = re.",
    "from typing import ",
    "import argparse\n\nparser = argparse.",
    "import logging\n\nlogger = logging.",
    "from pathlib import ",
    "import unittest\n\n\nclass TestMath(unittest.",
    "import requests\n\nresponse = requests.",
    "import threading\n\nlock = threading.",
]
TOP1_AT_LEAST = 8  # of the FLOOR probes; every one must be among the five


@pytest.fixture(scope="module")
def offered() -> dict[str, tuple[list[str], set[str]]]:
    """prefix -> (names the bundled model offers, `mode=token, n=5` as bench/idioms.py asks; accepted names)."""
    probes = {p["prefix"]: set(p["accept"]) for p in json.loads(IDIOMS.read_text())["probes"]}
    model, _ = load_checkpoint(DEFAULT_MODEL)
    spec = SearchSpec(mode="token", n=5)
    with torch_threads(1):  # a few beams step fastest on one thread, as the server steps them
        return {prefix: ([c.text for c in complete(model, prefix, spec)], probes[prefix]) for prefix in FLOOR}


def test_floor_probes_offer_a_right_name_among_five(offered):
    missed = {prefix: names for prefix, (names, accept) in offered.items() if not accept.intersection(names)}
    assert not missed


def test_floor_probes_offer_a_right_name_first(offered):
    first = sum(bool(names) and names[0] in accept for names, accept in offered.values())
    assert first >= TOP1_AT_LEAST, {prefix: names for prefix, (names, _) in offered.items()}
