"""`codelstm serve`: the HTTP completion service."""

from __future__ import annotations

import logging
import os

from codelstm.commands import UserError


def register(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="serve completions over HTTP",
        description="Serve the HTTP API (SPEC section 5). Every setting can also come from a CODELSTM_* environment "
        "variable (CODELSTM_API_KEYS, CODELSTM_ADMIN_KEY, CODELSTM_MAX_QUEUE, ...) or from a TOML file given with "
        "--config (keys named as in docs/codelstm.example.toml); flags win over the environment, which wins over "
        "the file. SIGTERM drains: new work gets 503, work in flight finishes for up to CODELSTM_SHUTDOWN_GRACE_S "
        "seconds. Logs go to stderr, one line per request (docs/deploy.md).",
    )
    p.add_argument("--config", metavar="FILE", default=None,
                   help="TOML file of settings (an unknown key is an error); flags and CODELSTM_* variables win")
    p.add_argument("--model", default=None, help="checkpoint folder or models/NAME (default: the bundled model)")
    p.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default 8000)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: the CPUs this process may use, after its cgroup CPU quota and "
                        "affinity mask, less one)")
    p.add_argument("--log-level", default=None, choices=("debug", "info", "warning", "error"),
                   help="for codelstm's and uvicorn's loggers (default info; health probes log at debug)")
    p.add_argument("--log-format", default=None, choices=("text", "json"),
                   help="text (default) or json: one object per line with fixed keys")
    p.set_defaults(handler=run)


def run(args) -> int:
    from pydantic import ValidationError

    from codelstm.commands.common import resolve_model_path
    from codelstm.model import CheckpointError
    from codelstm.model.checkpoint import read_config
    from codelstm.server.logs import configure_logging
    from codelstm.server.main import create_app
    from codelstm.server.settings import ConfigFileError, load_settings
    from codelstm.server.shutdown import serve

    flags = {"host": args.host, "port": args.port, "threads": args.threads, "log_level": args.log_level,
             "log_format": args.log_format}
    overrides = {k: v for k, v in flags.items() if v is not None}
    if args.model is not None:
        overrides["model_path"] = resolve_model_path(args.model)
        overrides["model_name"] = os.path.basename(os.path.normpath(args.model))
    try:
        settings = load_settings(args.config, **overrides)
    except ConfigFileError as e:
        raise UserError(str(e)) from None
    except ValidationError as e:
        first = e.errors()[0]
        if not first["loc"]:  # a rule across settings: its message names them
            raise UserError(f"invalid settings: {first['msg'].removeprefix('Value error, ')}") from None
        name, field = ".".join(map(str, first["loc"])), str(first["loc"][0])
        where = f"--{field.replace('_', '-')}, " if field in flags else ""
        source = f"{where}CODELSTM_{field.upper()}" + (" or the config file" if args.config else "")
        raise UserError(f"invalid setting {name} (from {source}): {first['msg']}") from None
    configure_logging(settings.log_level, settings.log_format)
    try:
        read_config(resolve_model_path(settings.model_path))  # fail before binding the port
        from codelstm.server.service import context_mode

        context_mode(settings.context, resolve_model_path(settings.model_path))  # CODELSTM_CONTEXT needs a mixer?
    except CheckpointError as e:
        raise UserError(str(e)) from None
    warning = exposure_warning(settings)
    if warning:
        logging.getLogger("codelstm.server").warning(warning)
    serve(create_app(settings), settings.host, settings.port, settings.shutdown_grace_s, settings.log_level)
    return 0


def exposure_warning(settings) -> str | None:
    """What to warn about when the service is reachable from other machines and nothing guards it."""
    if settings.loopback or settings.api_keys:
        return None
    return (f"serving on {settings.host} without API keys: anyone who can reach this address can request "
            "completions (set CODELSTM_API_KEYS); the explorer's training needs CODELSTM_ADMIN_KEY")
