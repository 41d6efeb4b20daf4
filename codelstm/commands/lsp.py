"""`codelstm lsp`: the language server, on stdio (default) or TCP."""

from __future__ import annotations

import logging
import sys

from codelstm.commands import UserError


def register(sub) -> None:
    p = sub.add_parser(
        "lsp",
        help="language server for editors",
        description="Language server (LSP) on stdio: textDocument/completion (identifiers) and "
        "textDocument/inlineCompletion (ghost text), forwarded to a codelstm HTTP service. Settings come "
        "from initializationOptions / didChangeConfiguration (see docs/editors.md). With a service, the editor's "
        "workspace folder (source files, .gitignore honoured, size-capped) is uploaded as a workspace in the "
        "background and kept current, so completions draw on the whole project (setting `workspace`).",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--server", metavar="URL", help="HTTP service (default: the serverUrl setting, "
                       "else http://127.0.0.1:8000)")
    where.add_argument("--embedded", action="store_true", help="load the model in-process; no HTTP service (its mixer.json "
                       "mixes in the context models over the document; no workspace)")
    p.add_argument("--model", default=None, help="with --embedded: checkpoint (default: the bundled model)")
    p.add_argument("--tcp", type=int, metavar="PORT", help="listen on TCP instead of stdio")
    p.add_argument("--log-file", help="write logs here (logs never go to stdout)")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(handler=run)


def run(args) -> int:
    level = logging.DEBUG if args.verbose else logging.WARNING
    if args.log_file:
        logging.basicConfig(filename=args.log_file, level=level)
    else:
        logging.basicConfig(stream=sys.stderr, level=level)  # stdout carries the protocol
    from codelstm.lsp.options import Options
    from codelstm.lsp.server import server

    if args.server:
        if not args.server.startswith(("http://", "https://")):
            raise UserError(f"--server must be an http(s) URL, not {args.server!r}")
        server.options = Options(server_url=args.server.rstrip("/"))
    if args.embedded:
        from codelstm.commands.common import resolve_model_path
        from codelstm.lsp.backend import EmbeddedBackend
        from codelstm.model import CheckpointError

        try:
            embedded = EmbeddedBackend(resolve_model_path(args.model))
        except CheckpointError as e:
            raise UserError(str(e)) from None
        server.backend_factory = lambda options: embedded
    if args.tcp is not None:
        server.start_tcp("127.0.0.1", args.tcp)
    else:
        server.start_io()
    return 0
