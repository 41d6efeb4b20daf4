"""`codelstm eval`: BPC, identifier accuracy and keystrokes saved on held-out files (SPEC section 7)."""

from __future__ import annotations

import json
from pathlib import Path

from codelstm.commands import UserError
from codelstm.commands.common import load_model


def register(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="measure a model on held-out files",
        description="BPC over every byte; top-1/top-5 identifier accuracy and keystrokes saved over the first "
        "--sample-bytes of the first --sample-files files. Each file starts from a fresh state.",
    )
    p.add_argument("files", nargs="*", type=Path, metavar="FILE", help="held-out source files")
    p.add_argument("--model", required=True, help="checkpoint folder, model name, or 'default'")
    p.add_argument("--data", type=Path, help="corpus folder: its val.bin files are evaluated")
    p.add_argument("--max-files", type=int, default=None, help="evaluate at most this many files")
    p.add_argument("--sample-files", type=int, default=16, help="files used for the search metrics (default 16)")
    p.add_argument("--sample-bytes", type=int, default=2000, help="bytes per file for the search metrics (default 2000)")
    p.add_argument("--json", type=Path, dest="json_out", metavar="OUT", help="also write the results as JSON")
    p.add_argument("--record", action="store_true",
                   help="store the results in the checkpoint's config.json (training.eval)")
    p.set_defaults(handler=run)


def load_docs(args) -> list[bytes]:
    if bool(args.files) == (args.data is not None):
        raise UserError("give either --data DIR or FILE...")
    if args.data is not None:
        from codelstm.training.data import open_stream, split_documents

        try:
            docs = split_documents(open_stream(args.data / "val.bin"), max_docs=args.max_files)
        except FileNotFoundError as e:
            raise UserError(str(e)) from None
    else:
        docs = []
        for path in args.files[: args.max_files]:
            if not path.is_file():
                raise UserError(f"file not found: {path}")
            data = path.read_bytes()
            if b"\x00" in data:
                raise UserError(f"{path} is binary (contains NUL bytes)")
            docs.append(data)
    docs = [d for d in docs if d]
    if not docs:
        raise UserError("no non-empty files to evaluate")
    return docs


def run(args) -> int:
    from codelstm.training.metrics import evaluate

    docs = load_docs(args)
    model, config = load_model(args.model)
    result = evaluate(model, docs, sample_bytes=args.sample_bytes, max_sample_files=args.sample_files)
    rows = [
        ("files", f"{result.files}"), ("bytes", f"{result.bytes:,}"), ("BPC", f"{result.bpc:.4f}"),
        ("identifiers tried", f"{result.identifiers:,}"), ("top-1 identifier accuracy", f"{result.top1:.1%}"),
        ("top-5 identifier accuracy", f"{result.top5:.1%}"), ("characters typed (sample)", f"{result.typed_chars:,}"),
        ("keystrokes saved", f"{result.keystrokes_saved:.1%}"), ("acceptances", f"{result.acceptances:,}"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"model: {args.model}")
    for k, v in rows:
        print(f"  {k:<{width}}  {v:>12}")
    if args.json_out:
        args.json_out.write_text(json.dumps({"model": str(args.model), **result.to_dict()}, indent=2) + "\n")
    if args.record:
        from datetime import datetime, timezone

        from codelstm.commands.common import resolve_model_path

        path = resolve_model_path(args.model) / "config.json"
        config = json.loads(path.read_text())
        config.setdefault("training", {})["eval"] = {
            **{k: round(v, 4) if isinstance(v, float) else v for k, v in result.to_dict().items()},
            "data": str(args.data) if args.data else [str(f) for f in args.files],
            "sample_files": args.sample_files, "sample_bytes": args.sample_bytes,
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        path.write_text(json.dumps(config, indent=2) + "\n")
    return 0
