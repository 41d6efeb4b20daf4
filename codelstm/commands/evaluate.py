"""`codelstm eval`: BPC, identifier accuracy and keystrokes saved on held-out files (SPEC section 7)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from codelstm.commands import UserError
from codelstm.commands.common import load_model
from codelstm.training.sampling import Sampling

if TYPE_CHECKING:
    from codelstm.training.heldout import NamedDocument


def register(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="measure a model on held-out files",
        description="BPC over every byte of every file. Top-1/top-5 identifier accuracy and keystrokes saved run "
        "a completion search per position, so they sample: --sample-files files evenly spaced through the list, "
        "and in each, positions evenly spread through the whole file (deterministic, never only its first "
        "bytes): --sample-identifiers identifier starts, and --sample-bytes bytes typed by the simulated "
        "typist in --sample-windows stretches, each from a line start; top-1 after one typed character "
        "retries each identifier of 2+ characters after its first. The counts are printed with the "
        "results. Each file starts from a fresh state.",
    )
    p.add_argument("files", nargs="*", type=Path, metavar="FILE", help="held-out source files")
    p.add_argument("--model", required=True, help="checkpoint folder, model name, or 'default'")
    p.add_argument("--data", type=Path, help="corpus folder: its val.bin files are evaluated")
    p.add_argument("--split", choices=("val", "all"), default="val",
                   help="with --data: the val split (default), or every file of both splits, for a corpus held out "
                   "whole (recipes/unseen-packages/)")
    p.add_argument("--bytes-per-package", type=int, default=None, metavar="N",
                   help="with --data: a sample spread over the packages (a file name's first two parts): per "
                   "package, files in hash order of their names until N bytes, so one huge package cannot drown "
                   "the rest (bench/context.py's unseen sample is --split all --bytes-per-package 16000)")
    p.add_argument("--max-files", type=int, default=None, help="evaluate at most this many files")
    defaults = Sampling()
    p.add_argument("--sample-files", type=int, default=defaults.files,
                   help=f"files used for the search metrics, evenly spaced through the list (default {defaults.files})")
    p.add_argument("--sample-identifiers", type=int, default=defaults.identifiers,
                   help=f"identifier starts tried per file, spread through it (default {defaults.identifiers})")
    p.add_argument("--sample-bytes", type=int, default=defaults.typed_bytes,
                   help=f"bytes the simulated typist types per file (default {defaults.typed_bytes})")
    p.add_argument("--sample-windows", type=int, default=defaults.windows,
                   help=f"stretches those bytes are split into, spread through the file (default {defaults.windows})")
    p.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default="auto",
                   help="kernels: auto = bfloat16 on CUDA and on CPUs with native bfloat16, as training and "
                   "serving use there, else float32")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads (default: all cores; on a machine whose cores are busy, 1 is faster)")
    p.add_argument("--context", choices=("none", "document", "workspace"), default="none",
                   help="also report every metric with the context models mixed in (docs/context.md; the model "
                   "needs a mixer.json), beside the LSTM alone: over each file so far (document), and also over "
                   "the other source files of its folder or of --workspace (workspace), never the file itself. "
                   "BPC mixes with online adaptation, as `mixer fit` measures; the searches mix as `serve` "
                   "completes: fitted weights, the context models over the text before each position")
    p.add_argument("--workspace", type=Path, default=None,
                   help="with --context workspace: this folder's source files are every file's workspace")
    p.add_argument("--breakdown", action="store_true",
                   help="also print where the LSTM's bits go: BPC and share of all bits per package (with --data, a "
                   "file name's first two parts; with FILE..., each file's folder), and the ten costliest files")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", type=Path, dest="json_out", metavar="OUT", help="also write the results as JSON")
    p.add_argument("--record", action="store_true",
                   help="store the results in the checkpoint's config.json (training.eval)")
    p.set_defaults(handler=run)


def load_docs(args) -> list[NamedDocument]:
    """The files to evaluate, named as in the corpus manifest (--data) or by their paths (FILE...)."""
    from codelstm.training.heldout import NamedDocument

    if bool(args.files) == (args.data is not None):
        raise UserError("give either --data DIR or FILE...")
    if args.data is not None:
        docs = corpus_documents(args)
    else:
        if args.split != "val" or args.bytes_per_package is not None:
            raise UserError("--split and --bytes-per-package choose files of a corpus: they need --data")
        docs = []
        for path in args.files[: args.max_files]:
            if not path.is_file():
                raise UserError(f"file not found: {path}")
            data = path.read_bytes()
            if b"\x00" in data:
                raise UserError(f"{path} is binary (contains NUL bytes)")
            docs.append(NamedDocument(str(path), data))
    docs = [d for d in docs if d.data]
    if not docs:
        raise UserError("no non-empty files to evaluate")
    return docs


def corpus_documents(args) -> list[NamedDocument]:
    """The files of --data that --split, --bytes-per-package and --max-files choose, named as in its manifest."""
    from codelstm.training.heldout import load_named, spread_by_package

    if args.bytes_per_package is not None and args.bytes_per_package < 1:
        raise UserError("--bytes-per-package must be at least 1")
    if not (args.data / "manifest.json").is_file():
        raise UserError(f"{args.data} is not a corpus folder (no manifest.json): build one with `codelstm corpus build`"
                        if args.data.is_dir() else f"corpus folder not found: {args.data}")
    try:
        docs = load_named(args.data, ("train", "val") if args.split == "all" else ("val",))
    except (FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from None
    if args.bytes_per_package is not None:
        docs = spread_by_package(docs, args.bytes_per_package)
    return docs[: args.max_files]


def context_inputs(args, docs: list[NamedDocument]) -> tuple[Callable[[int], bytes] | None, list | None,
                                                            dict[str, bytes] | None]:
    """For `--context` over `docs` (`load_docs`'): (doc index -> its workspace (None for document context),
    the pool folder mates come from (--data), the workspaces by name (files))."""
    from codelstm.training.context_eval import WORKSPACE_MAX_BYTES
    from codelstm.training.heldout import folder_sources, folder_workspace, join_workspace, load_named

    if args.workspace is not None and not args.workspace.is_dir():
        raise UserError(f"workspace folder not found: {args.workspace}")
    workspaces = None
    pool = None
    if args.data is not None:
        pool = load_named(args.data, ("train", "val"))  # a file's folder mates, whichever split holds them
    elif args.context == "workspace":
        shared = join_workspace(folder_sources(args.workspace, recursive=True), WORKSPACE_MAX_BYTES) \
            if args.workspace is not None else None
        workspaces = {d.name: shared if shared is not None else
                      join_workspace(folder_sources(Path(d.name).parent, exclude=Path(d.name)), WORKSPACE_MAX_BYTES)
                      for d in docs}
    if args.context != "workspace":
        return None, pool, workspaces
    if workspaces is not None:
        return lambda i: workspaces[docs[i].name], pool, workspaces
    return lambda i: folder_workspace(docs[i], pool, WORKSPACE_MAX_BYTES), pool, workspaces


def run(args) -> int:
    from codelstm.training.metrics import evaluate

    counts = (args.sample_files, args.sample_identifiers, args.sample_bytes, args.sample_windows)
    if min(counts) < 0 or args.sample_windows < 1:
        raise UserError("--sample-* counts must not be negative, and --sample-windows must be at least 1")
    sampling = Sampling(*counts)
    if args.threads is not None:
        if args.threads < 1:
            raise UserError("--threads must be at least 1")
        import torch

        torch.set_num_threads(args.threads)
    named = load_docs(args)
    docs = [d.data for d in named]
    if args.workspace is not None and args.context != "workspace":
        raise UserError("--workspace needs --context workspace")
    mixers = None
    if args.context != "none":
        from codelstm.commands.common import load_mixer
        from codelstm.training.context_eval import PrefixMixers

        weights = load_mixer(args.model, needed_for=f"--context {args.context}")
        workspace_of, pool, workspaces = context_inputs(args, named)

        def mixers(i: int) -> PrefixMixers:
            return PrefixMixers(weights, docs[i], workspace_of(i) if workspace_of is not None else b"")

    model, config = load_model(args.model)
    result = evaluate(model, docs, sampling, precision=args.precision, progress=not args.quiet, mixers=mixers,
                      context=args.context)
    result_extra = {}
    if args.context != "none":
        from codelstm.training.context_eval import evaluate_contexts

        context = evaluate_contexts(model, weights, named, pool, contexts=(args.context,), progress=not args.quiet,
                                    workspaces=workspaces)
        result_extra = {"context": args.context, "bpc_context": context.bpc[args.context],
                        "context_workspace_bytes": context.workspace_bytes}
    c = result.with_context
    sec = result.seconds

    def share(value: float, tried: int) -> str:
        """A rate, or "-" where nothing was sampled (--sample-files 0): 0.0% would read as a measured zero."""
        return f"{value:.1%}" if tried else "-"

    rows = [  # (name, LSTM alone, with context or None where it does not differ)
        ("files", f"{result.files}", None), ("bytes", f"{result.bytes:,}", None),
        ("BPC", f"{result.bpc:.4f}", f"{result_extra['bpc_context']:.4f}" if c else None),
        ("files sampled for searches", f"{result.sample_files}", None),
        ("identifiers tried", f"{result.identifiers:,}", None),
        ("top-1 identifier accuracy", share(result.top1, result.identifiers),
         share(c.top1, result.identifiers) if c else None),
        ("top-5 identifier accuracy", share(result.top5, result.identifiers),
         share(c.top5, result.identifiers) if c else None),
        ("identifiers tried after 1 char", f"{result.identifiers_after_one:,}", None),
        ("top-1 after 1 typed char", share(result.top1_after_one, result.identifiers_after_one),
         share(c.top1_after_one, result.identifiers_after_one) if c else None),
        ("characters typed", f"{result.typed_chars:,}", None), ("typing stretches", f"{result.typist_windows:,}", None),
        ("keystrokes saved", share(result.keystrokes_saved, result.typed_chars),
         share(c.keystrokes_saved, result.typed_chars) if c else None),
        ("acceptances", f"{result.acceptances:,}", f"{c.acceptances:,}" if c else None),
        ("precision", result.precision, None),
        ("seconds (BPC)", f"{sec['bpc']:.1f}", f"{context.seconds:.1f}" if c else None),
        ("seconds (identifiers / keystrokes)", f"{sec['identifiers']:.1f} / {sec['keystrokes']:.1f}",
         f"{c.seconds['identifiers']:.1f} / {c.seconds['keystrokes']:.1f}" if c else None),
    ]
    width = max(len(k) for k, _, _ in rows)
    print(f"model: {args.model}")
    if c:
        print(f"  {'':<{width}}  {'LSTM alone':>12}  {'+ ' + args.context:>12}")
    for k, v, with_context in rows:
        print(f"  {k:<{width}}  {v:>12}" + (f"  {with_context:>12}" if with_context is not None else ""))
    if args.breakdown:
        result_extra["by_package"] = print_breakdown(named, result.document_bits, by_folder=args.data is None)
    if args.json_out:
        args.json_out.write_text(json.dumps({"model": str(args.model), **result.to_dict(), **result_extra}, indent=2) + "\n")
    if args.record:
        from datetime import datetime, timezone

        from codelstm.commands.common import resolve_model_path

        path = resolve_model_path(args.model) / "config.json"
        config = json.loads(path.read_text())
        config.setdefault("training", {})["eval"] = {
            **{k: round(v, 4) if isinstance(v, float) else v for k, v in result.to_dict().items()
               if k != "with_context"},
            "data": str(args.data) if args.data else [str(f) for f in args.files],
            **({"split": args.split, "bytes_per_package": args.bytes_per_package} if args.data else {}),
            "sampling": {"files": args.sample_files, "identifiers_per_file": args.sample_identifiers,
                         "typed_bytes_per_file": args.sample_bytes, "windows_per_file": args.sample_windows},
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        path.write_text(json.dumps(config, indent=2) + "\n")
    return 0


def print_breakdown(docs: list[NamedDocument], bits: list[float], by_folder: bool, costliest: int = 10) -> list[dict]:
    """Print BPC and share of all bits per package (or folder) and for the costliest files; return the
    package rows. A whole-split BPC can be one huge, hard file (a table of expected outputs): this says so."""
    total = max(math.fsum(bits), 1e-12)
    groups: dict[str, list[int]] = {}
    for i, d in enumerate(docs):
        groups.setdefault(d.folder if by_folder else d.package, []).append(i)
    rows = []
    for name, members in groups.items():
        size, cost = sum(len(docs[i].data) for i in members), math.fsum(bits[i] for i in members)
        rows.append({"package": name, "files": len(members), "bytes": size, "bpc": round(cost / size, 4),
                     "bits_share": round(cost / total, 4)})
    rows.sort(key=lambda r: -r["bits_share"])
    width = max(len(r["package"]) for r in rows)
    print(f"by {'folder' if by_folder else 'package'} (LSTM alone), costliest first:")
    print(f"  {'':<{width}}  {'files':>6}  {'bytes':>11}  {'BPC':>7}  {'bits':>6}")
    for r in rows:
        print(f"  {r['package']:<{width}}  {r['files']:>6}  {r['bytes']:>11,}  {r['bpc']:>7.4f}  {r['bits_share']:>6.1%}")
    files = sorted(range(len(docs)), key=lambda i: -bits[i])[:costliest]
    print("costliest files (LSTM alone):")
    for i in files:
        print(f"  {bits[i] / len(docs[i].data):7.4f}  {len(docs[i].data):>11,}  {bits[i] / total:>6.1%}  {docs[i].name}")
    return rows
