"""`codelstm train`: train from scratch or fine-tune, from a corpus folder or straight from repositories."""

from __future__ import annotations

import json
import os
from pathlib import Path

from codelstm.commands import UserError


def register(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train or fine-tune a model",
        description="Train (or fine-tune with --init) a byte-level LSTM. The output folder becomes a checkpoint "
        "(best validation BPC); OUT/last holds the state for --resume.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help="corpus folder from `codelstm corpus build`")
    src.add_argument("--repo", type=Path, action="append", help="git repository to build a corpus from; repeatable")
    p.add_argument("--init", default=None, help="'default' or a checkpoint folder to fine-tune from")
    p.add_argument("--out", type=Path, default=Path("models/run"), help="output folder (default models/run)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, help="wall-clock budget of the whole command: corpus building, "
                        "training, validation and, after --init, the report (default 10 when no --steps)")
    budget.add_argument("--steps", type=int, help="step budget")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last")
    arch = p.add_argument_group("architecture (ignored with --init or --resume)")
    arch.add_argument("--cell", choices=("lstm", "gru"), default="lstm")
    arch.add_argument("--hidden", type=int, default=512, help="hidden units per layer (default 512)")
    arch.add_argument("--layers", type=int, default=2, help="recurrent layers (default 2)")
    arch.add_argument("--embed", type=int, default=64, help="byte embedding width (default 64)")
    arch.add_argument("--dropout", type=float, default=0.0)
    opt = p.add_argument_group("optimisation")
    opt.add_argument("--lanes", type=int, default=32, help="parallel streams per step, the batch size (default 32)")
    opt.add_argument("--seq-len", type=int, default=128, help="truncated BPTT length in bytes (default 128)")
    opt.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (default 2e-3)")
    opt.add_argument("--warmup", type=int, default=100, help="warm-up steps (default 100)")
    opt.add_argument("--weight-decay", type=float, default=0.01)
    opt.add_argument("--grad-clip", type=float, default=1.0)
    opt.add_argument("--eval-interval", type=int, default=200,
                     help="steps between validations (default 200); under --minutes a validation is skipped "
                     "while validating would exceed 5%% of the time so far")
    opt.add_argument("--eval-bytes", type=int, default=200_000, help="validation bytes per check (default 200000)")
    opt.add_argument("--seed", type=int, default=1337)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: the CPUs this process may use: "
                   "its affinity mask and cgroup CPU quota)")
    p.add_argument("--half", action="store_true", help="store the best weights as float16")
    p.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default="auto",
                   help="training kernels; auto = bfloat16 on CUDA and on CPUs with native bfloat16 "
                   "(AVX-512 BF16, AMX), else float32; weights stay float32 either way")
    p.add_argument("--lang", default=None, help="with --repo: languages to keep (default all known)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="with --repo: held-out share (default 0.1)")
    p.add_argument("--no-report", action="store_true",
                   help="skip report.md (written after --init or --repo runs: before/after on held-out files)")
    p.add_argument("--publish", metavar="URL", help="after training, load the model into the service at URL "
                   "through /v1/model/reload (admin key from --admin-key or CODELSTM_ADMIN_KEY)")
    p.add_argument("--admin-key", default=None, help="admin key for --publish")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def resolve_init(value: str | None) -> Path | None:
    if value is None:
        return None
    if value == "default":
        from codelstm.paths import DEFAULT_MODEL

        return DEFAULT_MODEL
    return Path(value)


def run(args) -> int:
    import time

    from codelstm.model import ModelConfig
    from codelstm.training.train import TrainConfig, Trainer, TrainingError

    started = time.perf_counter()

    if args.steps is not None and args.steps < 1:
        raise UserError("--steps must be positive")
    if args.minutes is not None and args.minutes <= 0:
        raise UserError("--minutes must be positive")
    minutes = args.minutes if (args.minutes or args.steps) else 10.0
    from codelstm.training.train import init_distributed

    rank, world, dist_device = init_distributed()
    try:
        _check_writable(args.out)
        data = args.data if args.data is not None else _corpus_from_repos(args, rank, world)
        if not data.is_dir():
            raise UserError(f"corpus folder not found: {data}")
        corpus_s = time.perf_counter() - started
        if args.threads is not None:  # before the report's first half, which would otherwise use every core
            from codelstm.training.train import tune_cpu

            tune_cpu(args.threads)
        report = Report(args, data, rank, world)
        report.measure_before()
        if args.minutes is not None or args.steps is None:
            minutes = remaining_minutes(minutes, time.perf_counter() - started, report.before_seconds)
        cfg = TrainConfig(
            data=data, out=args.out,
            model=ModelConfig(cell=args.cell, embed_dim=args.embed, hidden_size=args.hidden,
                              num_layers=args.layers, dropout=args.dropout),
            init=resolve_init(args.init), resume=args.resume, steps=args.steps, minutes=minutes,
            lanes=args.lanes, seq_len=args.seq_len, lr=args.lr, warmup_steps=args.warmup,
            weight_decay=args.weight_decay, grad_clip=args.grad_clip, eval_interval=args.eval_interval,
            eval_bytes=args.eval_bytes, seed=args.seed, device=args.device, threads=args.threads,
            save_half=args.half, precision=args.precision, progress=not args.quiet, rank=rank, world=world,
        )
        if world > 1 and args.device == "auto":
            cfg.device = dist_device
        result = Trainer(cfg).train()
        if world > 1:  # every rank past its last collective before any tears its connections down: a rank that
            import torch.distributed as dist  # left early once aborted the other inside gloo (SIGABRT, busy CI)

            dist.barrier()
    except (TrainingError, ValueError) as e:
        raise UserError(str(e)) from None
    finally:
        if world > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
    if rank != 0:
        return 0
    if cfg.init is not None:
        result["mixer"] = carry_mixer(cfg.init, args.out, data, progress=not args.quiet)
    if report.wanted:
        result["report"] = str(report.write(result))
    result["timing"] = {"corpus_s": round(corpus_s, 1), **result["timing"],
                        "report_s": round(report.seconds, 1) if report.wanted else None,
                        "total_s": round(time.perf_counter() - started, 1)}
    print(json.dumps(result, indent=2))
    if args.publish:
        publish(args.publish, args.out, args.admin_key or os.environ.get("CODELSTM_ADMIN_KEY"))
    return 0


def carry_mixer(init: Path, out: Path, data: Path, progress: bool) -> dict | None:
    """Give the new checkpoint the starting model's mixer, so it is served with the context models as the
    starting one was, and, when the starting model had a names table, that table with the names of its own
    corpus's train split added (its code's qualifiers and names). The mixer's logits were fitted for the
    starting LSTM: `codelstm mixer fit --model OUT --data CORPUS` fits them for this one (docs/training.md)."""
    from codelstm.model.mixer import MixerWeights
    from codelstm.training.mixer_fit import names_from_corpus

    try:
        weights = MixerWeights.load(init)
    except ValueError as e:
        print(f"mixer: not carried over ({e})")
        return None
    if weights is None:
        return None
    if weights.names is not None:
        try:
            weights.names = weights.names.merged(names_from_corpus(data, progress=progress))
        except (FileNotFoundError, ValueError) as e:
            print(f"mixer: no names table ({data}: {e})")
            weights.names = None
    weights.fitted_on = {**weights.fitted_on, "carried_from": str(init)}
    weights.save(out)
    return {"carried_from": str(init), "names": len(weights.names) if weights.names is not None else None,
            "refit": f"codelstm mixer fit --model {out} --data {data}"}


def remaining_minutes(budget: float, spent_s: float, report_s: float) -> float:
    """The training loop's share of a --minutes budget: what corpus building and the report's first half took
    is spent, and the report's second half (the new model, measured the same way) will take as long again."""
    left = budget * 60 - spent_s - report_s
    if left < budget * 60 * 0.1:
        raise UserError(f"--minutes {budget:g} leaves no time to train: building the corpus and measuring the "
                        f"starting model took {(spent_s + report_s) / 60:.1f} min; give more minutes")
    return left / 60


class Report:
    """The before/after report of a --repo or --init run. The starting model is measured before training (on
    one process), so the time the report will take is known and kept out of the training budget."""

    def __init__(self, args, data: Path, rank: int, world: int) -> None:
        self.args, self.data = args, data
        self.wanted = rank == 0 and not args.no_report and bool(args.init or args.repo)
        self.init = resolve_init(args.init) if not args.resume else None
        self.early = world == 1  # several ranks must share one budget, so there the report comes after
        self.held_out: dict | None = None
        self.before: dict | None = None
        self.before_seconds = 0.0
        self.seconds = 0.0

    def _held_out(self) -> dict:
        from codelstm.training.report import held_out_by_language

        if self.held_out is None:
            self.held_out = held_out_by_language(self.data)
        return self.held_out

    def measure_before(self) -> None:
        if not self.wanted or self.init is None or not self.early:
            return
        from codelstm.commands.common import load_model
        from codelstm.training.report import measure

        model, _ = load_model(self.init)
        self.before, self.before_seconds = measure(model, self._held_out(), "before", not self.args.quiet)

    def write(self, result: dict) -> Path:
        from codelstm.commands.common import load_model
        from codelstm.training.report import compare, measure, write_report

        progress = not self.args.quiet
        if self.init is not None and self.before is None:
            model, _ = load_model(self.init)
            self.before, self.before_seconds = measure(model, self._held_out(), "before", progress)
        after, after_seconds = measure(load_model(self.args.out)[0], self._held_out(), "after", progress)
        self.seconds = self.before_seconds + after_seconds
        rows = compare(self.before, after, self._held_out())
        return write_report(self.args.out, self.data, self.init, rows, result,
                            {"total": self.seconds, "before": self.before_seconds, "after": after_seconds})


def publish(url: str, model: Path, admin_key: str | None) -> None:
    """Ask a running service to load the new checkpoint; the checkpoint stays on disk whatever happens."""
    import httpx

    headers = {"Authorization": f"Bearer {admin_key}"} if admin_key else {}
    try:
        r = httpx.post(f"{url.rstrip('/')}/v1/model/reload", json={"path": str(model.resolve())}, headers=headers,
                       timeout=60)
    except httpx.HTTPError as e:
        raise UserError(f"publish failed: {url} is unreachable ({type(e).__name__}); the model is saved in {model}") from None
    if r.status_code != 200:
        try:
            message = r.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = r.text[:200]
        raise UserError(f"publish failed ({r.status_code}: {message}); the model is saved in {model}")
    print(f"published {model} to {url}")


def _check_writable(out: Path) -> None:
    from codelstm.paths import ensure_writable

    try:
        ensure_writable(out)
    except OSError as e:
        raise UserError(f"cannot write to output folder {out}: {e.strerror}") from None


def _corpus_from_repos(args, rank: int = 0, world: int = 1) -> Path:
    from codelstm.training.corpus import CorpusBuilder, CorpusError, is_git_repo
    from codelstm.training.languages import parse_languages

    for repo in args.repo:
        if not repo.is_dir() or not is_git_repo(repo):
            raise UserError(f"not a git repository: {repo}")
    corpus = args.out / "corpus"
    if rank != 0:  # rank 0 builds the corpus; the others wait for it
        import torch.distributed as dist

        dist.barrier()
        return corpus
    try:
        CorpusBuilder(corpus, parse_languages(args.lang), args.val_fraction, progress=not args.quiet).build(
            [str(r) for r in args.repo])
    except CorpusError as e:
        raise UserError(str(e)) from None
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
    return corpus
