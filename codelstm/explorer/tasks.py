"""The synthetic experiments of "Exploring LSTMs", trained small enough to explore within seconds.

Training is the foundation's (`codelstm.training.tasks.synthetic.train_task`, the project's own Trainer);
only the recipe differs: a higher learning rate and fewer steps than the foundation's tests. Measured on a
2-core CPU (seed 0, 200 fresh prompts): counting 700 steps in 12 s, 100% exact; state 400 in 6 s, 100%;
selective 1200 in 19 s, 100%; copy 1000 in 20 s, 93.5% (copy is the hardest for a tiny LSTM). A sample text of several examples, one document each (separated by NUL, the
document separator the model was trained with), is what the explorer shows for a task model.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from codelstm.model import ByteLM
from codelstm.model.config import DOC_SEPARATOR
from codelstm.training.tasks.synthetic import TASKS, Task, examples, exact_match, train_task


@dataclass(frozen=True)
class ExploreRecipe:
    steps: int
    lr: float
    features: tuple[str, ...]  # the features "find neurons" ranks for this task by default
    description: str


RECIPES: dict[str, ExploreRecipe] = {
    "counting": ExploreRecipe(700, 2e-2, ("a_minus_b", "a_count", "column"),
                              "a^N X b^N: emit as many b's as a's were read (N <= 10)"),
    "selective": ExploreRecipe(1200, 2e-2, ("a_minus_b", "a_count", "column"),
                               "a's and X's mixed, then Y b^N: count the a's, ignore the X's"),
    "state": ExploreRecipe(400, 2e-2, ("first_letter", "column"),
                           "A x..x Y a / B x..x Y b: remember the first letter across the x's"),
    "copy": ExploreRecipe(1000, 2e-2, ("to_copy", "column"), "abc X abc: repeat a short string"),
}
assert set(RECIPES) == set(TASKS), "every synthetic task needs an explorer recipe"


@dataclass
class TrainedTask:
    name: str
    model: ByteLM
    steps: int
    seconds: float
    exact_match: float  # share of 200 fresh prompts completed exactly (greedy, up to the newline)
    metadata: dict[str, Any]  # the Trainer's checkpoint metadata plus the task's name and score


def task_names() -> list[str]:
    return list(TASKS)


def sample_text(name: str, count: int = 12, seed: int = 7) -> str:
    """`count` examples of the task, each a document `prompt answer \\n`, joined by NUL document separators."""
    task = TASKS[name]
    return chr(DOC_SEPARATOR).join(p + a + "\n" for p, a in examples(task, count, seed))


def recipe_task(name: str, steps: int | None = None) -> Task:
    recipe = RECIPES[name]
    return dataclasses.replace(TASKS[name], steps=steps or recipe.steps, lr=recipe.lr)


def train(name: str, steps: int | None = None, seed: int = 0, progress: bool = False) -> TrainedTask:
    """Train task `name` from scratch (in a temporary folder) and score it; raises KeyError for unknown names.

    The Trainer pins torch to one thread for these tiny models; the caller's thread count is restored."""
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; tasks: {', '.join(TASKS)}")
    task = recipe_task(name, steps)
    threads = torch.get_num_threads()
    t0 = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix=f"codelstm-task-{name}-") as tmp:
            model = train_task(task, Path(tmp), seed=seed, progress=progress)
            metadata = json.loads((Path(tmp) / "model" / "config.json").read_text()).get("training", {})
    finally:
        torch.set_num_threads(threads)
    seconds = time.perf_counter() - t0
    score = exact_match(model, examples(task, 200, seed + 1000))
    metadata.update({"task": name, "exact_match": round(score, 4), "explore_seconds": round(seconds, 1)})
    metadata["command"] = f"codelstm explore train-task {name} --steps {task.steps} --seed {seed}"
    return TrainedTask(name, model, task.steps, seconds, score, metadata)
