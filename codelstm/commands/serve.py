"""`codelstm serve`: the HTTP completion service."""

from __future__ import annotations

import logging
import os

from codelstm.commands import UserError


def register(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="serve completions over HTTP",
        description="Serve the HTTP API (SPEC section 5). Every setting also reads a CODELSTM_* environment "
        "variable (CODELSTM_API_KEYS, CODELSTM_ADMIN_KEY, CODELSTM_MAX_QUEUE, ...); flags win. SIGTERM drains: "
        "new work gets 503, work in flight finishes for up to CODELSTM_SHUTDOWN_GRACE_S seconds.",
    )
    p.add_argument("--model", default=None, help="checkpoint folder or models/NAME (default: the bundled model)")
    p.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default 8000)")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    p.set_defaults(handler=run)


def run(args) -> int:
    from pydantic import ValidationError

    from codelstm.commands.common import resolve_model_path
    from codelstm.model import CheckpointError
    from codelstm.model.checkpoint import read_config
    from codelstm.server.main import create_app
    from codelstm.server.settings import ServerSettings
    from codelstm.server.shutdown import serve

    overrides = {k: v for k, v in {"host": args.host, "port": args.port}.items() if v is not None}
    if args.model is not None:
        overrides["model_path"] = resolve_model_path(args.model)
        overrides["model_name"] = os.path.basename(os.path.normpath(args.model))
    try:
        settings = ServerSettings(**overrides)
    except ValidationError as e:
        first = e.errors()[0]
        raise UserError(f"invalid setting {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    try:
        read_config(resolve_model_path(settings.model_path))  # fail before binding the port
        from codelstm.server.service import context_mode

        context_mode(settings.context, resolve_model_path(settings.model_path))  # CODELSTM_CONTEXT needs a mixer?
    except CheckpointError as e:
        raise UserError(str(e)) from None
    warning = exposure_warning(settings)
    if warning:
        logging.basicConfig(format="%(levelname)s: %(message)s")
        logging.getLogger("codelstm.server").warning(warning)
    serve(create_app(settings), settings.host, settings.port, settings.shutdown_grace_s, args.log_level)
    return 0


def exposure_warning(settings) -> str | None:
    """What to warn about when the service is reachable from other machines and nothing guards it."""
    if settings.loopback or settings.api_keys:
        return None
    return (f"serving on {settings.host} without API keys: anyone who can reach this address can request "
            "completions (set CODELSTM_API_KEYS); the explorer's training needs CODELSTM_ADMIN_KEY")
