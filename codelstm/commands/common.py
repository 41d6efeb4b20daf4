"""Helpers shared by the subcommands."""

from __future__ import annotations

from pathlib import Path

from codelstm.commands import UserError


def resolve_model_path(value: str | Path | None) -> Path:
    """None or 'default' -> the bundled model; a name under ./models -> that folder; else the path itself."""
    from codelstm.paths import DEFAULT_MODEL

    if value is None or str(value) == "default":
        return DEFAULT_MODEL
    path = Path(value)
    if not path.exists() and (Path("models") / path).is_dir():
        return Path("models") / path
    return path


def load_model(value: str | Path | None):
    """Load a checkpoint for inference or fail with a one-line error."""
    from codelstm.model import CheckpointError, load_checkpoint

    try:
        return load_checkpoint(resolve_model_path(value))
    except CheckpointError as e:
        raise UserError(str(e)) from None


def load_mixer(model: str | Path | None, needed_for: str | None = None):
    """The mixer.json beside a checkpoint (None when it has none), or a one-line error: a broken file, or
    none when `needed_for` (an option such as "--context document") requires one."""
    from codelstm.model.mixer import MixerWeights

    try:
        weights = MixerWeights.load(resolve_model_path(model))
    except ValueError as e:
        raise UserError(str(e)) from None
    if weights is None and needed_for is not None:
        raise UserError(f"{needed_for} needs a mixer.json beside the model: run `codelstm mixer fit`")
    return weights
