"""`codelstm corpus build`."""

from __future__ import annotations

import json
from pathlib import Path

from codelstm.commands import UserError


def register(sub) -> None:
    corpus = sub.add_parser("corpus", help="build training corpora")
    csub = corpus.add_subparsers(dest="corpus_command", required=True, metavar="COMMAND")
    p = csub.add_parser(
        "build",
        help="build a corpus from git repos, folders and PyPI package lists",
        description="Build train.bin / val.bin / manifest.json from sources. A SRC is a git repository "
        "(tracked files, .gitignore honoured), a plain folder, a requirements-style .txt list of PyPI "
        "packages (downloaded with pip download --no-deps), or pypi:NAME==VERSION.",
    )
    p.add_argument("sources", nargs="+", metavar="SRC")
    p.add_argument("-o", "--out", required=True, type=Path, help="output folder")
    p.add_argument("--lang", default=None, help="comma-separated language ids to keep (default: all known)")
    p.add_argument("--val-fraction", type=float, default=0.05, help="share of files held out (default 0.05)")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                   help="skip files whose corpus name (SOURCE/relative/path) matches; repeatable")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def run(args) -> int:
    from codelstm.training.corpus import CorpusBuilder, CorpusError
    from codelstm.training.languages import parse_languages

    if not 0.0 < args.val_fraction < 1.0:
        raise UserError("--val-fraction must be between 0 and 1")
    try:
        langs = parse_languages(args.lang)
        builder = CorpusBuilder(args.out, langs, args.val_fraction, tuple(args.exclude), progress=not args.quiet)
        manifest = builder.build(args.sources)
    except (CorpusError, ValueError) as e:
        raise UserError(str(e)) from None
    print(json.dumps({k: manifest[k] for k in ("hash", "splits", "skipped")}, indent=2))
    return 0
