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
