"""`codelstm mixer fit`: fit the weights that mix the context models with a checkpoint's LSTM."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from codelstm.commands import UserError
from codelstm.commands.common import load_model, resolve_model_path


def register(sub) -> None:
    p = sub.add_parser(
        "mixer",
        help="fit the context-model mixer of a checkpoint",
        description="Fit the mixer that combines the LSTM with the context models (docs/context.md) on a corpus's "
        "files, read as a completion would see them, and write mixer.json beside the checkpoint's weights; also count the "
        "names model's table (names.safetensors: which names follow which qualifier) on the corpus's train split.",
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    fit = actions.add_parser("fit", help="fit mixer.json on a corpus folder",
                             description="Fit mixer.json on a corpus folder's files (by default its val split: "
                             "files the LSTM did not train on, so it learns how far to trust the LSTM on new code).")
    fit.add_argument("--model", required=True, help="checkpoint folder, model name, or 'default'")
    fit.add_argument("--data", type=Path, required=True, help="corpus folder (from `codelstm corpus build`)")
    fit.add_argument("--split", choices=["val", "train", "all"], default="val", help="which files (default val)")
    fit.add_argument("--bytes-per-package", type=int, default=6000,
                     help="bytes of files per package or top folder, spread by name hash (default 6000)")
    fit.add_argument("--online-rate", type=float, default=0.02,
                     help="step size of the per-document adaptation shipped with the weights (default 0.02)")
    fit.add_argument("--history-term", action="store_true",
                     help="also fit the history gate (docs/context.md; off by default: it cost a small workspace "
                     "its names)")
    fit.add_argument("--no-names", action="store_true",
                     help="no names model: do not count names.safetensors on the corpus's train split (docs/context.md)")
    fit.add_argument("--out", type=Path, default=None, help="folder for mixer.json (default: the checkpoint's)")
    fit.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    fit.add_argument("--quiet", action="store_true", help="no progress bar")
    fit.set_defaults(handler=run_fit)


def run_fit(args) -> int:
    from tqdm import tqdm

    from codelstm.model.mixer import MixerWeights
    from codelstm.model.scoring import lstm_scores_many
    from codelstm.training.context_eval import evidence_for
    from codelstm.training.heldout import folder_workspace, load_named, spread_by_package
    from codelstm.training.mixer_fit import fit_logits, names_from_corpus

    if args.bytes_per_package < 1:
        raise UserError("--bytes-per-package must be positive")
    if not 0 <= args.online_rate <= 1:
        raise UserError("--online-rate must be between 0 and 1")
    splits = ("train", "val") if args.split == "all" else (args.split,)
    if "train" in splits and not args.no_names:
        raise UserError("the names table is counted on the train split, so the mixer cannot be fitted there: "
                        "use --split val, or --no-names")
    try:
        pool = load_named(args.data, splits)
    except (FileNotFoundError, ValueError) as e:
        raise UserError(f"cannot read corpus {args.data}: {e}") from None
    docs = spread_by_package(pool, args.bytes_per_package)
    if not docs:
        raise UserError(f"corpus {args.data} has no files in split {args.split}")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    model, _ = load_model(args.model)
    names = None
    if not args.no_names:
        try:
            names = names_from_corpus(args.data, progress=not args.quiet)
        except (FileNotFoundError, ValueError) as e:
            raise UserError(f"cannot read the train split of {args.data} for the names table: {e}") from None
        if not args.quiet:
            print(f"names table: {len(names):,} qualifiers from {names.built_from['files']:,} files")
    weights = MixerWeights(online_rate=args.online_rate, names=names)
    evidence = []
    all_scores = lstm_scores_many(model, [d.data for d in docs], progress=not args.quiet)
    for doc, scores in tqdm(zip(docs, all_scores), desc="mixer evidence", unit="file", total=len(docs),
                            disable=args.quiet, dynamic_ncols=True):
        evidence.append(evidence_for(doc.data, scores, weights))  # the document alone ...
        workspace = folder_workspace(doc, pool, 1 << 20)
        if workspace:  # ... and with its folder as workspace, so both situations shape the weights
            evidence.append(evidence_for(doc.data, scores, weights, workspace))
    fitted = fit_logits(weights, evidence, progress=not args.quiet, fit_history=args.history_term)
    fitted.fitted_on = {"data": str(args.data), "split": args.split, "files": len(docs),
                        "bytes": sum(len(d.data) for d in docs), "bytes_per_package": args.bytes_per_package,
                        "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    out = args.out or resolve_model_path(args.model)
    out.mkdir(parents=True, exist_ok=True)
    path = fitted.save(out)
    print(f"wrote {path} (fitted on {len(docs)} files, {fitted.fitted_on['bytes']:,} bytes)")
    return 0
