"""`codelstm complete`: one completion in the terminal."""

from __future__ import annotations

import re
from pathlib import Path

from codelstm.commands import UserError
from codelstm.commands.common import load_model


def register(sub) -> None:
    p = sub.add_parser(
        "complete",
        help="complete code in the terminal",
        description="Print completions for a prefix, or for the cursor position FILE:LINE:COL (1-based).",
    )
    p.add_argument("location", nargs="?", metavar="FILE:LINE:COL", help="cursor in a file (the text after it is the suffix)")
    p.add_argument("--prefix", help="text before the cursor (instead of FILE:LINE:COL)")
    p.add_argument("--model", default=None, help="checkpoint folder or model name (default: the bundled model)")
    p.add_argument("--mode", choices=("token", "line", "block"), default="line")
    p.add_argument("-n", type=int, default=3, help="completions to show (default 3)")
    p.add_argument("--max-chars", type=int, default=64, help="longest completion (default 64)")
    p.add_argument("--beam-width", type=int, default=None)
    p.add_argument("--temperature", type=float, default=None, help="sample instead of beam search")
    p.add_argument("--context", choices=("none", "document", "workspace"), default=None,
                   help="mix context models into the LSTM (docs/context.md): over the prefix (document), also over "
                   "the other source files of FILE's folder or of --workspace (workspace), or not at all (none); "
                   "default: document when the model has a mixer.json, else none")
    p.add_argument("--workspace", type=Path, default=None, help="folder whose source files are the workspace")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(handler=run)


def read_location(location: str) -> tuple[str, str]:
    """`path:LINE:COL` -> (prefix, suffix); LINE and COL count from 1, COL in characters."""
    m = re.fullmatch(r"(.+):(\d+):(\d+)", location)
    if not m:
        raise UserError(f"expected FILE:LINE:COL, got {location!r}")
    path, line, col = Path(m.group(1)), int(m.group(2)), int(m.group(3))
    if not path.is_file():
        raise UserError(f"file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text") from None
    lines = text.split("\n")
    if not 1 <= line <= len(lines):
        raise UserError(f"{path} has {len(lines)} lines; line {line} is out of range")
    if not 1 <= col <= len(lines[line - 1]) + 1:
        raise UserError(f"line {line} of {path} has {len(lines[line - 1])} characters; column {col} is out of range")
    offset = sum(len(s) + 1 for s in lines[: line - 1]) + col - 1
    return text[:offset], text[offset:]


WORKSPACE_MAX_BYTES = 4 << 20


def context_for(args):
    """(mixer weights or None, workspace ContextIndex or None) for --context/--workspace."""
    from codelstm.commands.common import load_mixer
    from codelstm.model.context import ContextIndex

    weights = load_mixer(args.model)
    context = args.context or ("document" if weights is not None else "none")
    if context == "none":
        if args.workspace is not None:
            raise UserError("--workspace needs --context workspace")
        return None, None
    if weights is None:
        load_mixer(args.model, needed_for=f"--context {context}")  # raises: this context needs a mixer
    if context == "document":
        return weights, None
    from codelstm.training.heldout import folder_sources, join_workspace

    if args.workspace is not None:
        if not args.workspace.is_dir():
            raise UserError(f"workspace folder not found: {args.workspace}")
        docs = folder_sources(args.workspace, recursive=True)
    elif args.location is not None:
        path = Path(args.location.rsplit(":", 2)[0])
        docs = folder_sources(path.parent, exclude=path)
    else:
        raise UserError("--context workspace with --prefix needs --workspace DIR")
    text = join_workspace(docs, WORKSPACE_MAX_BYTES)
    return weights, (ContextIndex.build(text, weights.config) if text else None)


def run(args) -> int:
    import json

    from codelstm.model.generate import SearchSpec, complete

    if (args.prefix is None) == (args.location is None):
        raise UserError("give either --prefix TEXT or FILE:LINE:COL")
    if not 1 <= args.n <= 16:
        raise UserError("-n must be between 1 and 16")
    if not 1 <= args.max_chars <= 512:
        raise UserError("--max-chars must be between 1 and 512")
    if args.temperature is not None and args.temperature <= 0:
        raise UserError("--temperature must be positive")
    prefix, suffix = (args.prefix, "") if args.prefix is not None else read_location(args.location)
    model, _ = load_model(args.model)
    weights, workspace = context_for(args)
    spec = SearchSpec(mode=args.mode, n=args.n, max_chars=args.max_chars, beam_width=args.beam_width,
                      suffix=suffix, temperature=args.temperature)
    results = complete(model, prefix, spec, weights, workspace)
    if args.json:
        print(json.dumps([{"text": c.text, "logprob": round(c.logprob, 4), "finish_reason": c.finish_reason}
                          for c in results], indent=2))
        return 0
    if not results:
        print("(no completion)")
    for c in results:
        print(f"{c.logprob:8.2f}  {c.text!r}")
    return 0
