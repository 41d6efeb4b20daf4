"""`codelstm explore`: the neuron explorer's command-line side (the page itself is GET /explore of `serve`)."""

from __future__ import annotations

import json
from pathlib import Path

from codelstm.commands import UserError


def register(sub) -> None:
    explore = sub.add_parser(
        "explore", help="train synthetic-task models and find neurons (the page is GET /explore of serve)",
        description="The neuron explorer from the command line. The interactive page is served by "
        "`codelstm serve` at /explore (docs/explorer.md).")
    esub = explore.add_subparsers(dest="explore_command", required=True, metavar="COMMAND")
    from codelstm.explorer.tasks import RECIPES

    p = esub.add_parser(
        "train-task", help="train a synthetic experiment's model into a checkpoint",
        description="Train one of the synthetic experiments of \"Exploring LSTMs\" (counting, selective, state, "
        "copy) in seconds and write a checkpoint that `codelstm serve --model DIR` serves and the explorer page "
        "shows with the task's sample text and features.")
    p.add_argument("name", choices=list(RECIPES), help="the experiment")
    p.add_argument("--out", type=Path, required=True, help="checkpoint folder to write")
    p.add_argument("--steps", type=int, default=None,
                   help="training steps (default: the task's recipe, " +
                   ", ".join(f"{k} {r.steps}" for k, r in RECIPES.items()) + ")")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=run_train_task)

    p = esub.add_parser(
        "neurons", help="rank neurons by correlation with features of a text",
        description="Trace FILE through the model and print, for each feature (indentation depth, bracket "
        "depth, in string, in comment, column, distance to the identifier end; for a task model its own "
        "features), the neurons whose activation correlates best with it (Pearson r over the bytes).")
    p.add_argument("file", nargs="?", type=Path, metavar="FILE",
                   help="text to read (default for a task model: its sample of 30 examples)")
    p.add_argument("--model", default=None, help="checkpoint folder, model name, or 'default' (default)")
    p.add_argument("--layers", default=None, help="comma-separated layer indices (default: all)")
    p.add_argument("--quantities", default="h,c", help="comma-separated: h, c, i, f, o, g (default h,c)")
    p.add_argument("--features", default=None, help="comma-separated feature names (default: the model's)")
    p.add_argument("--language", default=None, help="language id for the comment syntax (default python)")
    p.add_argument("--top", type=int, default=3, help="neurons shown per feature (default 3)")
    p.add_argument("--max-bytes", type=int, default=8192, help="read at most this many bytes (default 8192)")
    p.add_argument("--json", type=Path, dest="json_out", metavar="OUT", help="also write the ranking as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=run_neurons)


def run_train_task(args) -> int:
    from codelstm.explorer import tasks
    from codelstm.model import save_checkpoint
    from codelstm.paths import ensure_writable

    if args.steps is not None and not 10 <= args.steps <= 100_000:
        raise UserError("--steps must be between 10 and 100000")
    try:
        ensure_writable(args.out)
    except OSError as e:
        raise UserError(f"cannot write to output folder {args.out}: {e.strerror}") from None
    trained = tasks.train(args.name, steps=args.steps, seed=args.seed, progress=not args.quiet)
    save_checkpoint(args.out, trained.model, trained.metadata)
    print(json.dumps({"task": trained.name, "out": str(args.out), "steps": trained.steps,
                      "train_seconds": round(trained.seconds, 1), "exact_match": trained.exact_match}, indent=2))
    return 0


def _csv(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def run_neurons(args) -> int:
    from codelstm.commands.common import load_model
    from codelstm.explorer import tasks
    from codelstm.explorer.features import CODE_FEATURES, FEATURES, compute_features
    from codelstm.explorer.neurons import rank_neurons
    from codelstm.model.activations import TraceError, supported_quantities, trace

    if args.top < 1 or args.max_bytes < 1:
        raise UserError("--top and --max-bytes must be positive")
    model, config = load_model(args.model)
    task = (config.get("training") or {}).get("task")
    if args.file is not None:
        if not args.file.is_file():
            raise UserError(f"file not found: {args.file}")
        data = args.file.read_bytes()[:args.max_bytes]
    elif task in tasks.TASKS:
        data = tasks.sample_text(task, 30).encode()
    else:
        raise UserError("give a FILE to read (only a synthetic-task model has a sample of its own)")
    if not data:
        raise UserError(f"{args.file} is empty")
    names = _csv(args.features) or (list(tasks.RECIPES[task].features) if task in tasks.RECIPES else list(CODE_FEATURES))
    unknown = [n for n in names if n not in FEATURES]
    if unknown:
        raise UserError(f"unknown features {unknown}; known: {', '.join(FEATURES)}")
    quantities = _csv(args.quantities) or ["h", "c"]
    have = supported_quantities(model)
    if any(q not in have for q in quantities):
        raise UserError(f"--quantities: a {model.config.cell.upper()} model has {', '.join(have)}")
    try:
        layers = [int(k) for k in _csv(args.layers)] if args.layers else list(range(model.config.num_layers))
    except ValueError:
        raise UserError("--layers takes comma-separated integers") from None
    if any(not 0 <= k < model.config.num_layers for k in layers):
        raise UserError(f"--layers: the model has layers 0..{model.config.num_layers - 1}")

    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=len(data), desc="trace", unit="B", dynamic_ncols=True)
    try:
        result = trace(model, data, on_step=(lambda n: bar.update(n - bar.n)) if bar else None)
        if bar is not None:
            bar.update(len(data) - bar.n)
    except TraceError as e:
        raise UserError(str(e)) from None
    finally:
        if bar is not None:
            bar.close()
    ranked = rank_neurons(result, compute_features(data, names, args.language), layers, quantities, args.top)
    width = max(len(r.feature) for r in ranked)
    print(f"model: {args.model or 'default'} ({len(data)} bytes, layers {layers}, quantities {quantities})")
    for r in ranked:
        cells = "  ".join(f"L{s.layer} {s.quantity}#{s.neuron:<4} r={s.r:+.3f}" for s in r.best)
        print(f"  {r.feature:<{width}}  {cells or 'constant over this text'}")
    if args.json_out:
        args.json_out.write_text(json.dumps({"model": str(args.model or "default"), "bytes": len(data),
                                             "features": [{"name": r.feature, "defined": r.defined,
                                                           "best": [s.__dict__ for s in r.best]}
                                                          for r in ranked]}, indent=2) + "\n")
    return 0
