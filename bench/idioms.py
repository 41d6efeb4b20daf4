"""First-minute idiom probes through HTTP: is a right name first / among the five? (issue 15)

Usage: python bench/idioms.py [--model PATH | --url URL] [--api-key KEY] [--data FILE] [--beam-width N] [--misses]

Each probe of `bench/data/idioms.json` is a short prefix that ends where a name starts (`x = np.`) and the
set of names a developer would accept there. Every probe is one `POST /v1/complete` with `mode=token, n=5`
(server defaults otherwise) to a real `codelstm serve`: one started here on loopback (`--model`, default
the bundled model), or a running one (`--url`). Prints top-1 / top-5 per library family and overall.
"""

from __future__ import annotations

import argparse
import json
import platform
from collections import defaultdict
from contextlib import nullcontext
from datetime import datetime, timezone
from pathlib import Path

import httpx

from common import ROOT, server

DATA = ROOT / "bench" / "data" / "idioms.json"


def load_probes(path: Path = DATA) -> list[dict]:
    """The probes: {"family", "prefix", "accept": [names]} each."""
    return json.loads(path.read_text())["probes"]


def offered(client: httpx.Client, prefix: str, beam_width: int | None = None) -> list[str]:
    """The five names the service offers after `prefix`, best first (`beam_width` None: the server's choice)."""
    r = client.post("/v1/complete", json={"prefix": prefix, "mode": "token", "n": 5, "beam_width": beam_width})
    r.raise_for_status()
    return [c["text"] for c in r.json()["completions"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="checkpoint for a server started here (default: the bundled one)")
    parser.add_argument("--url", default=None, help="a running server instead of starting one")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--beam-width", type=int, default=None, help="beams per search (default: the server's)")
    parser.add_argument("--misses", action="store_true",
                        help="print every probe whose first name is not right, marking those with no right name in the five")
    args = parser.parse_args()
    probes = load_probes(args.data)
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    by_family: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    misses = []
    with (nullcontext(args.url) if args.url else server(args.model)) as url:
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            model = client.get("/v1/model").json().get("name", "?")
            for probe in probes:
                names = offered(client, probe["prefix"], args.beam_width)
                accept = set(probe["accept"])
                counts = by_family[probe["family"]]
                counts[0] += 1
                counts[1] += bool(names) and names[0] in accept
                counts[2] += bool(accept.intersection(names))
                if not (names and names[0] in accept):
                    misses.append((probe["prefix"], names, bool(accept.intersection(names))))
    print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {platform.machine()}; server {url} (model {model}); "
          f"{len(probes)} probes from {args.data.name}; mode=token n=5 beam_width={args.beam_width or 'server'}\n")
    print("| family | probes | top-1 | top-5 |\n|---|---|---|---|")
    total = [0, 0, 0]
    for family, (n, top1, top5) in by_family.items():
        print(f"| {family} | {n} | {top1 / n:.0%} | {top5 / n:.0%} |")
        total = [total[0] + n, total[1] + top1, total[2] + top5]
    print(f"| **all** | {total[0]} | **{total[1] / total[0]:.1%}** ({total[1]}) | **{total[2] / total[0]:.1%}** ({total[2]}) |")
    if args.misses:
        print("\nfirst name not right (* none right in the five):")
        for prefix, names, in_five in misses:
            print(f"{' ' if in_five else '*'} {prefix[-40:]!r:44} -> {names}")


if __name__ == "__main__":
    main()
