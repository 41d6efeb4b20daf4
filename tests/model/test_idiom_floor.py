"""A regression floor on first-minute idioms (issue 15): a few probes of bench/data/idioms.json that the bundled
model answers today, by the LSTM alone and as served (mixed with the context and names models). The full set
is measured by bench/idioms.py; this is a floor, not a tuning target."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codelstm.model import load_checkpoint
from codelstm.model.generate import SearchSpec, complete
from codelstm.model.mixer import MixerWeights
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
# probes the served model (document context, the names model) answers first (2026-11-26), among them ones
# where the mixer without the names model echoed a name of the prefix (`asyncio.` gave `asyncio`, `math.` gave
# `import`, `from unittest.mock import ` gave `unittest`)
SERVED_FLOOR = [
    "import math\n\nd = math.",
    "import tempfile\n\nwith tempfile.",
    "import argparse\n\nparser = argparse.",
    "from pathlib import Path\n\nroot = Path(__file__).",
    "import numpy as np\n\nn = np.linalg.",
    "import pytest\n\n\n@pytest.mark.",
    "from unittest.mock import ",
    "import requests\n\nresponse = requests.",
    "import asyncio\n\n\nasync def main():\n    await asyncio.",
    "import asyncio\n\nloop = asyncio.",
    "import torch\n\nwith torch.",
    "from torch.utils.data import ",
]
SERVED_TOP1_AT_LEAST = 10  # of the SERVED_FLOOR probes; every one must be among the five


def _offered(prefixes: list[str], mixer: MixerWeights | None) -> dict[str, tuple[list[str], set[str]]]:
    """prefix -> (names the bundled model offers, `mode=token, n=5` as bench/idioms.py asks; accepted names)."""
    probes = {p["prefix"]: set(p["accept"]) for p in json.loads(IDIOMS.read_text())["probes"]}
    model, _ = load_checkpoint(DEFAULT_MODEL)
    spec = SearchSpec(mode="token", n=5)
    with torch_threads(1):  # a few beams step fastest on one thread, as the server steps them
        return {prefix: ([c.text for c in complete(model, prefix, spec, mixer)], probes[prefix])
                for prefix in prefixes}


@pytest.fixture(scope="module", params=["lstm alone", "served"])
def floor(request) -> tuple[dict[str, tuple[list[str], set[str]]], int]:
    """(offers on the floor's probes, how many must be right first): the LSTM alone on FLOOR, or the bundled
    model with its mixer and names table, as `serve` completes (document context), on SERVED_FLOOR."""
    if request.param == "lstm alone":
        return _offered(FLOOR, None), TOP1_AT_LEAST
    mixer = MixerWeights.load(DEFAULT_MODEL)
    assert mixer is not None and mixer.names is not None
    return _offered(SERVED_FLOOR, mixer), SERVED_TOP1_AT_LEAST


def test_floor_probes_offer_a_right_name_among_five(floor):
    offered, _ = floor
    missed = {prefix: names for prefix, (names, accept) in offered.items() if not accept.intersection(names)}
    assert not missed


def test_floor_probes_offer_a_right_name_first(floor):
    offered, at_least = floor
    first = sum(bool(names) and names[0] in accept for names, accept in offered.values())
    assert first >= at_least, {prefix: names for prefix, (names, _) in offered.items()}
