"""A short run of bench/soak.py (30 s, 4 editors, documents up to 200 KB, a reload every 10 s) against a real
server: no 500, no hung request, every fuzzed bad request answered 4xx."""

from __future__ import annotations

import sys

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import soak  # noqa: E402


def test_short_soak_has_no_500_no_hung_request_and_4xx_for_every_bad_one(tiny_model):
    summary = soak.run(tiny_model, seconds=30, clients=4, max_doc=200_000, bad_every=10, reload_every=10,
                       cold_prefix_cap="4096")
    assert summary["requests"] > 50, summary
    assert summary["status_500"] == 0, summary["errors_500"]
    assert summary["hung"] == 0
    assert summary["bad_requests"] > 0 and summary["bad_not_4xx"] == [], summary["bad_not_4xx"]
    assert summary["reloads"].get(200, 0) >= 1 and set(summary["reloads"]) == {200}
    assert summary["statuses"].get(200, 0) > 0
    assert summary["failed_checks"] == []
