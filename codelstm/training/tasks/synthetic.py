"""Generators for the four synthetic experiments, and the glue to train and score them with codelstm itself.

Each example is one document `prompt + answer + "\\n"`; the model is given the prompt (after the NUL that
starts every document) and must complete the answer up to the newline, greedily and exactly.

(a) counting            a^N X b^N                      N <= 10
(b) selective counting  a's with X's scattered, Y b^N  the X's must not be counted
(c) state               A x...x Y a   /   B x...x Y b  remember the first letter across the x's
(d) copy                abc X abc                      repeat a short string
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from codelstm.model import ByteLM, ModelConfig
from codelstm.model.generate import Search, SearchSpec, prefill, run_searches

Example = tuple[str, str]  # (prompt, answer)


def counting(rng: random.Random) -> Example:
    n = rng.randint(1, 10)
    return "a" * n + "X", "b" * n


def selective_counting(rng: random.Random) -> Example:
    n = rng.randint(1, 10)
    seq = ["a"] * n + ["X"] * rng.randint(0, 6)
    rng.shuffle(seq)
    return "".join(seq) + "Y", "b" * n


def state(rng: random.Random) -> Example:
    first = rng.choice("AB")
    return first + "x" * rng.randint(1, 10) + "Y", first.lower()


COPY_ALPHABET = "abc"  # strings of 1 to 5 letters: 363 distinct prompts


def copy(rng: random.Random) -> Example:
    s = "".join(rng.choice(COPY_ALPHABET) for _ in range(rng.randint(1, 5)))
    return s + "X", s


@dataclass(frozen=True)
class Task:
    name: str
    generate: Callable[[random.Random], Example]
    model: ModelConfig
    steps: int  # training steps that reach >= 95% exact on this CPU in well under a minute
    lr: float = 1e-2
    lanes: int = 32
    seq_len: int = 32


TASKS: dict[str, Task] = {
    "counting": Task("counting", counting, ModelConfig(hidden_size=10, num_layers=1, embed_dim=8), steps=1000),
    "selective": Task("selective", selective_counting, ModelConfig(hidden_size=32, num_layers=1, embed_dim=8),
                      steps=3500),
    "state": Task("state", state, ModelConfig(hidden_size=32, num_layers=1, embed_dim=8), steps=1500),
    "copy": Task("copy", copy, ModelConfig(hidden_size=64, num_layers=1, embed_dim=16), steps=2000),
}


def examples(task: Task, count: int, seed: int) -> list[Example]:
    rng = random.Random(seed)
    return [task.generate(rng) for _ in range(count)]


def write_corpus(task: Task, folder: Path, train_examples: int = 20_000, seed: int = 0,
                 exclude: set[str] | None = None) -> Path:
    """A corpus folder in the format `codelstm corpus build` writes, one example per document."""
    folder.mkdir(parents=True, exist_ok=True)
    exclude = exclude or set()
    train = [e for e in examples(task, train_examples, seed) if e[0] not in exclude]
    val = examples(task, 200, seed + 1)
    for split, rows in (("train", train), ("val", val)):
        data = b"".join((p + a + "\n").encode() + b"\0" for p, a in rows)
        (folder / f"{split}.bin").write_bytes(data)
    manifest = {"format": "codelstm-corpus/1", "hash": f"synthetic-{task.name}-{seed}", "task": task.name,
                "splits": {"train": {"files": len(train), "bytes": (folder / "train.bin").stat().st_size},
                           "val": {"files": len(val), "bytes": (folder / "val.bin").stat().st_size}},
                "skipped": {}}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return folder


def exact_match(model: ByteLM, tests: list[Example]) -> float:
    """Share of prompts whose greedy completion (up to the newline) is exactly the answer."""
    spec = SearchSpec(mode="line", n=1, beam_width=1, max_chars=32)
    searches = []
    for prompt, _ in tests:
        data = prompt.encode()
        st, logits = prefill(model, data)
        searches.append(Search(spec, st, logits, data))
    run_searches(model, searches)
    hits = 0
    for search, (_, answer) in zip(searches, tests):
        results = search.results()
        hits += bool(results) and results[0].text == answer
    return hits / max(len(tests), 1)


def train_task(task: Task, out: Path, seed: int = 0, steps: int | None = None, exclude: set[str] | None = None,
               progress: bool = False) -> ByteLM:
    """Train the task's tiny model with the project's own Trainer; returns it in eval mode."""
    from codelstm.training.train import TrainConfig, Trainer

    data = write_corpus(task, out / "corpus", seed=seed, exclude=exclude)
    cfg = TrainConfig(data=data, out=out / "model", model=task.model, steps=steps or task.steps, lanes=task.lanes,
                      seq_len=task.seq_len, lr=task.lr, warmup_steps=50, eval_interval=10**9, eval_bytes=4000,
                      seed=seed, device="cpu", threads=1, progress=progress,
                      precision="float32")  # ten-unit cells: bfloat16's rounding is their whole signal
    trainer = Trainer(cfg, command=f"synthetic task {task.name}")
    trainer.train()
    return trainer.model.eval()
