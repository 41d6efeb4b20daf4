"""`codelstm` command line: one subcommand per job, each failing with a one-line error and exit code 2."""

from __future__ import annotations

import argparse
import sys

from codelstm import __version__
from codelstm.commands import UserError, complete, corpus, evaluate, explore, lsp, mixer, serve, train

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="codelstm", description="Code completion from a byte-level LSTM.")
    parser.add_argument("--version", action="version", version=f"codelstm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (serve, lsp, complete, corpus, train, evaluate, mixer, explore):
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args) or 0
    except UserError as e:
        print(f"codelstm: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("codelstm: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
