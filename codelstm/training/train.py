"""Training loop: truncated BPTT over stateful contiguous lanes, AdamW, warm-up + cosine, clipping.

Layout of an output folder (itself a loadable checkpoint: the best one by validation BPC):
    config.json, model.safetensors   best checkpoint
    last/                            last checkpoint + trainer.safetensors/trainer.json (for --resume)
    metrics.jsonl                    one JSON object per logged step / validation
    loss.png                         loss curve, written at the end
"""

from __future__ import annotations

import json
import math
import os
import random
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from codelstm.cpu import available_cpus
from codelstm.model import ByteLM, ModelConfig, load_checkpoint, save_checkpoint
from codelstm.model.checkpoint import CheckpointError
from codelstm.model.network import use_onednn
from codelstm.training.data import LaneBatcher, open_stream, split_documents, spread_sample
from codelstm.training.evaluate import LOG2E, bits_per_byte, resolve_precision
from codelstm.training.schedule import lr_at


class TrainingError(Exception):
    """Training cannot start or continue; the message is one line meant for the user."""


@dataclass
class TrainConfig:
    data: Path  # corpus folder with train.bin, val.bin, manifest.json
    out: Path  # output folder (becomes a checkpoint)
    model: ModelConfig = field(default_factory=ModelConfig)  # architecture when not initialised from a checkpoint
    init: Path | None = None  # checkpoint to fine-tune from (its architecture wins)
    resume: bool = False  # continue from out/last
    steps: int | None = None  # step budget
    minutes: float | None = None  # wall-clock budget; with both, whichever ends first
    lanes: int = 32  # parallel contiguous streams per step (the batch size)
    seq_len: int = 128  # truncated-BPTT length in bytes
    lr: float = 2e-3
    min_lr_ratio: float = 0.1  # cosine floor as a share of lr
    warmup_steps: int = 100
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    eval_interval: int = 200  # steps between validations
    eval_bytes: int = 200_000  # validation bytes per periodic check (the final one uses the same set)
    eval_share: float = 0.05  # with a --minutes budget, validation may take at most this share of the time so far
    log_interval: int = 10
    seed: int = 1337
    device: str = "auto"  # auto | cpu | cuda
    threads: int | None = None  # CPU threads; None = the CPUs available (affinity, cgroup quota: codelstm/cpu.py)
    save_half: bool = False  # store the best weights in float16 (halves the file)
    precision: str = "auto"  # auto | float32 | bfloat16 (autocast: float32 weights, bfloat16 kernels)
    progress: bool = True
    rank: int = 0
    world: int = 1


def pick_device(choice: str) -> torch.device:
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise TrainingError("--device cuda was asked for, but no CUDA device is available")
    return torch.device(choice)


def tune_cpu(threads: int | None) -> int:
    """Use every core for the big matrix products; oneDNN stays on (it is what makes nn.LSTM fast here)."""
    n = threads or available_cpus()  # the cgroup quota and affinity mask, not the host's cores
    torch.set_num_threads(n)
    return n


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def lineage(training: dict[str, Any]) -> dict[str, Any]:
    """What a fine-tuned model inherits in its config.json: how its starting checkpoint was trained, with
    that checkpoint's own lineage nested, so a model continued several times still tells its whole story."""
    keys = ("command", "earlier_commands", "date", "steps", "chars_seen", "val_bpc", "init")
    inherited = {k: training[k] for k in keys if training.get(k) is not None}
    inherited["chars_seen_total"] = total_chars_seen(training)
    if "bpc" in training.get("eval", {}):
        inherited["eval_bpc"] = training["eval"]["bpc"]
    return inherited


def total_chars_seen(training: dict[str, Any]) -> int:
    """Characters a checkpoint has seen since random initialisation, through its chain of `init` records."""
    if training.get("chars_seen_total") is not None:
        return int(training["chars_seen_total"])
    parent = training.get("init")
    return int(training.get("chars_seen") or 0) + (total_chars_seen(parent) if isinstance(parent, dict) else 0)


def _manifest(data: Path) -> dict[str, Any]:
    path = data / "manifest.json"
    if not path.is_file():
        raise TrainingError(f"{data} is not a corpus folder (no manifest.json); build one with `codelstm corpus build`")
    return json.loads(path.read_text())


def _save_trainer_state(folder: Path, opt: torch.optim.Optimizer, info: dict[str, Any],
                        carried: tuple[torch.Tensor, ...] | None) -> None:
    """Optimizer tensors and the carried hidden state go to safetensors, scalars to JSON: resuming never unpickles."""
    tensors: dict[str, torch.Tensor] = {}
    for j, t in enumerate(carried or ()):
        tensors[f"carried.{j}"] = t.detach().cpu().contiguous()
    for pid, state in opt.state_dict()["state"].items():
        for key, value in state.items():
            tensors[f"{pid}.{key}"] = value.detach().cpu().contiguous().reshape(value.shape)
    save_file(tensors, str(folder / "trainer.safetensors"))
    groups = [{k: v for k, v in g.items() if k != "params"} for g in opt.state_dict()["param_groups"]]
    (folder / "trainer.json").write_text(json.dumps({**info, "param_groups": groups}, indent=2))


def _load_trainer_state(folder: Path, opt: torch.optim.Optimizer) -> dict[str, Any]:
    info = json.loads((folder / "trainer.json").read_text())
    tensors = load_file(str(folder / "trainer.safetensors"))
    state: dict[int, dict[str, torch.Tensor]] = {}
    carried = [tensors.pop(f"carried.{j}") for j in range(2) if f"carried.{j}" in tensors]
    info["carried"] = tuple(carried) or None
    for name, value in tensors.items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    current = opt.state_dict()
    for group, saved in zip(current["param_groups"], info["param_groups"]):
        group.update({k: v for k, v in saved.items() if k in group})
    opt.load_state_dict({"state": state, "param_groups": current["param_groups"]})
    return info


class Trainer:
    def __init__(self, cfg: TrainConfig, command: str | None = None) -> None:
        self.cfg = cfg
        self.command = command or shlex.join(["codelstm", *sys.argv[1:]])
        self.device = pick_device(cfg.device)
        self.threads = tune_cpu(cfg.threads) if self.device.type == "cpu" else None
        seed_everything(cfg.seed + cfg.rank)
        self.manifest = _manifest(cfg.data)
        try:
            self.train_data = open_stream(cfg.data / "train.bin")
            val = open_stream(cfg.data / "val.bin")
        except FileNotFoundError as e:
            raise TrainingError(str(e)) from None
        if len(self.train_data) == 0:
            raise TrainingError(f"corpus {cfg.data} has an empty training split")
        self.val_docs = spread_sample(split_documents(val), cfg.eval_bytes) or split_documents(
            self.train_data, max_bytes=min(cfg.eval_bytes, 50_000))
        self.init_meta: dict[str, Any] = {}
        self.model = self._build_model().to(self.device)
        try:
            self.batches = LaneBatcher(self.train_data, cfg.lanes, cfg.seq_len, cfg.rank, cfg.world)
        except ValueError as e:
            raise TrainingError(str(e)) from None
        self.forward_model = self._wrap_distributed()
        self.opt = self._make_optimizer()
        self.step = 0
        self.chars_seen = 0
        self.elapsed_before = 0.0  # training seconds spent in earlier runs (resume)
        self.best_bpc = math.inf
        self.history: list[dict[str, Any]] = []
        self.carried: tuple[torch.Tensor, ...] | None = None  # hidden state carried across chunks
        self.step_seconds = 0.0  # this run's wall time in training steps (forward, backward, optimiser)
        self.validation_seconds = 0.0  # ... and in validation passes
        self.validations = 0
        self.last_validation_s = 0.0
        self.earlier_commands: list[str] = []  # with --resume: the commands of the runs continued, oldest first
        if cfg.resume:
            self._resume()

    def _build_model(self) -> ByteLM:
        cfg = self.cfg
        if cfg.init is not None and not cfg.resume:
            try:
                model, meta = load_checkpoint(cfg.init)
            except CheckpointError as e:
                raise TrainingError(str(e)) from None
            self.init_meta = {"path": str(cfg.init), **lineage(meta.get("training", {}))}
            model.train()
            return model
        return ByteLM(cfg.model)

    def _resume(self) -> None:
        last = self.cfg.out / "last"
        if not (last / "trainer.json").is_file():
            raise TrainingError(f"nothing to resume in {self.cfg.out} (no last/trainer.json)")
        try:
            model, meta = load_checkpoint(last)
        except CheckpointError as e:
            raise TrainingError(str(e)) from None
        earlier = meta.get("training", {})  # the run(s) this one continues: their commands stay in the record
        self.earlier_commands = [*earlier.get("earlier_commands", []),
                                 *([earlier["command"]] if earlier.get("command") else [])]
        if model.config != self.model.config:  # resuming a fine-tune: the stored architecture wins
            self.model = model.to(self.device).train()
            self.forward_model = self._wrap_distributed()
            self.opt = self._make_optimizer()
        else:
            self.model.load_state_dict(model.state_dict())
        info = _load_trainer_state(last, self.opt)
        self.step, self.chars_seen = info["step"], info["chars_seen"]
        self.elapsed_before, self.best_bpc = info["elapsed_s"], info["best_bpc"]
        self.batches.load_state_dict(info["batches"])
        self.carried = info["carried"]
        self.init_meta = info.get("init", {})
        torch.manual_seed(self.cfg.seed + self.step)
        metrics = self.cfg.out / "metrics.jsonl"
        if metrics.is_file():
            self.history = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]

    def _wrap_distributed(self) -> torch.nn.Module:
        """Under torchrun, DistributedDataParallel averages gradients across ranks (it also broadcasts
        rank 0's initial weights, so every rank starts equal)."""
        if self.cfg.world <= 1:
            return self.model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(self.model, device_ids=ids)

    def _all_ranks(self, value: float, op: str = "mean") -> float:
        """Combine a scalar across ranks (identity in a single process)."""
        if self.cfg.world <= 1:
            return value
        import torch.distributed as dist

        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
        return float(t) / (self.cfg.world if op == "mean" else 1)

    def weights_agree(self) -> bool:
        """True when every rank holds the same weights (checked once at the end of distributed training)."""
        if self.cfg.world <= 1:
            return True
        checksum = sum(float(p.double().sum()) for p in self.model.parameters())
        return self._all_ranks(checksum, "max") == -self._all_ranks(-checksum, "max")

    def _make_optimizer(self) -> torch.optim.AdamW:
        """AdamW with weight decay on matrices only (not on biases)."""
        decay = [p for p in self.model.parameters() if p.dim() >= 2]
        no_decay = [p for p in self.model.parameters() if p.dim() < 2]
        return torch.optim.AdamW(
            [{"params": decay, "weight_decay": self.cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=self.cfg.lr, betas=(0.9, 0.99), fused=self.device.type == "cuda",
        )

    # -- the loop --------------------------------------------------------------------------------

    def progress_fraction(self, elapsed: float) -> float:
        cfg = self.cfg
        parts = []
        if cfg.steps:
            parts.append(self.step / cfg.steps)
        if cfg.minutes:
            parts.append(elapsed / (cfg.minutes * 60))
        return max(parts) if parts else 0.0

    @property
    def precision(self) -> str:
        """bfloat16 on CUDA and on CPUs with native bfloat16: 1.9x the float32 chars/s on the 2-core VM
        (bench/train_speed.py). The optimiser keeps float32 weights, so only the kernels round."""
        return resolve_precision(self.cfg.precision, self.device)

    def validate(self) -> float:
        """Validation BPC on the packed, fast path (in the training precision); its time is accounted."""
        t0 = time.perf_counter()
        bpc = bits_per_byte(self.model, self.val_docs, precision=self.precision)
        self.last_validation_s = time.perf_counter() - t0
        self.validation_seconds += self.last_validation_s
        self.validations += 1
        return bpc

    def validation_due(self, elapsed_this_run: float) -> bool:
        """Every --eval-interval steps, but under a --minutes budget only while validation stays within
        `eval_share` of the time spent so far: a pass over 200 KB must not eat the minutes meant for training."""
        if self.step % self.cfg.eval_interval:
            return False
        if not self.cfg.minutes:
            return True
        return self.validation_seconds + self.last_validation_s <= self.cfg.eval_share * elapsed_this_run

    def budget_spent(self, elapsed: float) -> bool:
        """True once the budget is used up, keeping back the time the final validation will take."""
        reserve = self.last_validation_s if self.cfg.minutes else 0.0
        return self._all_ranks(self.progress_fraction(elapsed + reserve), "max") >= 1.0  # agreed across ranks

    def train(self, on_log: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        cfg = self.cfg
        cfg.out.mkdir(parents=True, exist_ok=True)
        model, device = self.model, self.device
        model.train()
        state = None if self.carried is None else tuple(t.to(device) for t in self.carried)
        bfloat16 = self.precision == "bfloat16"
        autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bfloat16)
        start = time.perf_counter()
        elapsed = self.elapsed_before
        bar = self._progress_bar()
        window_chars, window_t0 = 0, time.perf_counter()
        chars_per_s = 0.0
        loss_val = float("nan")
        val_bpc = self.history[-1].get("val_bpc") if self.history and "val_bpc" in self.history[-1] else None
        last_eval_step = self.step
        done = self.budget_spent(elapsed)
        while not done:
            step_t0 = time.perf_counter()
            x, y, reset = self.batches.next_batch()
            if reset:
                state = None
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            lr = lr_at(self.progress_fraction(elapsed), self.step, cfg.lr, cfg.warmup_steps, cfg.min_lr_ratio)
            for group in self.opt.param_groups:
                group["lr"] = lr
            with use_onednn(True), autocast:  # ATen's bfloat16 LSTM is 40x slower than oneDNN's
                _, loss, state = self.forward_model(x, state, y)
                state = tuple(s.detach() for s in state)
                self.carried = state
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            self.opt.step()
            self.step += 1
            self.step_seconds += time.perf_counter() - step_t0
            n = x.numel() * cfg.world
            self.chars_seen += n
            window_chars += n
            elapsed = self.elapsed_before + time.perf_counter() - start
            if self.step % cfg.log_interval == 0 or self.step == 1:
                loss_val = self._all_ranks(loss.item())  # the global batch's loss
                now = time.perf_counter()
                chars_per_s = window_chars / max(now - window_t0, 1e-9)
                window_chars, window_t0 = 0, now
                record = {"step": self.step, "loss": loss_val, "train_bpc": loss_val * LOG2E, "lr": lr,
                          "grad_norm": float(grad_norm), "chars_seen": self.chars_seen,
                          "chars_per_s": chars_per_s, "elapsed_s": elapsed}
                self._log(record, on_log)
            done = self.budget_spent(elapsed)
            due = self.validation_due(time.perf_counter() - start)
            if self.cfg.world > 1:  # every rank validates at the same steps
                due = self._all_ranks(float(due), "max") > 0
            if due or done:
                val_bpc = self.validate()
                last_eval_step = self.step
                is_best = val_bpc < self.best_bpc
                self.best_bpc = min(self.best_bpc, val_bpc)
                self._log({"step": self.step, "val_bpc": val_bpc, "chars_seen": self.chars_seen,
                           "elapsed_s": elapsed}, on_log)
                self._checkpoint(val_bpc, elapsed, best=is_best)
            if bar is not None:
                bar.n = min(self._bar_position(elapsed), bar.total)
                bar.set_postfix_str(
                    f"loss {loss_val * LOG2E:.3f} bpc | val {val_bpc if val_bpc is None else round(val_bpc, 3)} "
                    f"| {chars_per_s / 1000:.1f}k chars/s", refresh=False)
                bar.refresh()
        if bar is not None:
            bar.close()
        if last_eval_step != self.step:
            self._checkpoint(self.validate(), elapsed, best=False)
        self.plot()
        return {"steps": self.step, "chars_seen": self.chars_seen, "best_val_bpc": self.best_bpc,
                "elapsed_s": elapsed, "out": str(cfg.out), "world_size": cfg.world,
                "weights_agree_across_ranks": self.weights_agree(), "timing": self.timing(start)}

    def timing(self, start: float) -> dict[str, Any]:
        """Where this run's wall time went: training steps, validation passes, the rest (saving, logging)."""
        wall = time.perf_counter() - start
        return {"wall_s": round(wall, 1), "train_steps_s": round(self.step_seconds, 1),
                "validation_s": round(self.validation_seconds, 1), "validations": self.validations,
                "train_steps_share": round(self.step_seconds / max(wall, 1e-9), 3)}

    def _bar_position(self, elapsed: float) -> float:
        if self.cfg.steps and not self.cfg.minutes:
            return self.step
        return round(100 * self.progress_fraction(elapsed), 1)

    def _progress_bar(self):
        if not self.cfg.progress or self.cfg.rank != 0:
            return None
        from tqdm import tqdm

        if self.cfg.steps and not self.cfg.minutes:
            return tqdm(total=self.cfg.steps, initial=self.step, desc="train", unit="step", dynamic_ncols=True)
        return tqdm(total=100.0, desc="train", unit="%", dynamic_ncols=True,
                    bar_format="{l_bar}{bar}| {n:.1f}/100% [{elapsed}<{remaining}{postfix}]")

    def _log(self, record: dict[str, Any], on_log) -> None:
        self.history.append(record)
        if self.cfg.rank == 0:
            with open(self.cfg.out / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
        if on_log:
            on_log(record)

    def metadata(self, val_bpc: float, elapsed: float) -> dict[str, Any]:
        return {
            "command": self.command,
            **({"earlier_commands": self.earlier_commands} if self.earlier_commands else {}),
            "corpus_manifest_hash": self.manifest.get("hash"),
            "corpus_bytes": {k: v["bytes"] for k, v in self.manifest.get("splits", {}).items()},
            "steps": self.step,
            "chars_seen": self.chars_seen,
            "chars_seen_total": self.chars_seen + total_chars_seen(self.init_meta or {}),
            "val_bpc": round(val_bpc, 4),
            "best_val_bpc": round(min(self.best_bpc, val_bpc), 4),
            "val_bytes": sum(len(d) for d in self.val_docs),
            "train_seconds": round(elapsed, 1),
            "device": str(self.device) if self.device.type == "cpu" else torch.cuda.get_device_name(self.device),
            "world_size": self.cfg.world,
            "precision": self.precision,
            "init": self.init_meta or None,
            "hyperparameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self.cfg).items()
                                if k not in ("model", "data", "out", "init", "progress", "rank", "world")},
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }

    def _checkpoint(self, val_bpc: float, elapsed: float, best: bool) -> None:
        if self.cfg.rank != 0:
            return
        meta = self.metadata(val_bpc, elapsed)
        last = self.cfg.out / "last"
        save_checkpoint(last, self.model, meta)
        _save_trainer_state(last, self.opt, {
            "step": self.step, "chars_seen": self.chars_seen, "elapsed_s": elapsed,
            "best_bpc": min(self.best_bpc, val_bpc), "batches": self.batches.state_dict(),
            "init": self.init_meta,
        }, self.carried)
        if best:
            save_checkpoint(self.cfg.out, self.model, meta, dtype=torch.float16 if self.cfg.save_half else torch.float32)

    def plot(self) -> Path | None:
        """Loss curve PNG (train BPC and validation BPC against characters seen)."""
        if self.cfg.rank != 0:
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        train = [(r["chars_seen"], r["train_bpc"]) for r in self.history if "train_bpc" in r]
        val = [(r["chars_seen"], r["val_bpc"]) for r in self.history if "val_bpc" in r]
        fig, ax = plt.subplots(figsize=(7, 4))
        if train:
            ax.plot(*zip(*train), label="train", alpha=0.7)
        if val:
            ax.plot(*zip(*val), "o-", label="validation")
        ax.set_xlabel("characters seen")
        ax.set_ylabel("bits per byte")
        ax.set_title("codelstm training")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = self.cfg.out / "loss.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path


def init_distributed() -> tuple[int, int, str]:
    """(rank, world size, device) from torchrun's environment; starts the process group when world > 1.

    NCCL when every rank has a GPU, gloo otherwise (CPU training, tests)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, "auto"
    import torch.distributed as dist

    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available() and torch.cuda.device_count() > local_rank:
        torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl")
        return rank, world, f"cuda:{local_rank}"
    dist.init_process_group("gloo")
    return rank, world, "cpu"
