"""Architecture of the byte-level language model, stored verbatim in a checkpoint's config.json."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

VOCAB = "utf8-bytes"
VOCAB_SIZE = 256  # one symbol per byte value; byte 0 (NUL) separates documents
DOC_SEPARATOR = 0


@dataclass(frozen=True)
class ModelConfig:
    cell: Literal["lstm", "gru"] = "lstm"  # recurrent cell; GRU is cheaper, LSTM is what the literature studies
    embed_dim: int = 64  # byte embedding width; bytes are few, so a small embedding suffices
    hidden_size: int = 512  # state width per layer: the main capacity knob
    num_layers: int = 2  # stacked recurrent layers
    dropout: float = 0.0  # between layers and before the output layer; only active in training
    vocab_size: int = VOCAB_SIZE  # fixed: the vocabulary is the 256 byte values

    def __post_init__(self) -> None:
        if self.cell not in ("lstm", "gru"):
            raise ValueError(f"cell must be 'lstm' or 'gru', not {self.cell!r}")
        if self.vocab_size != VOCAB_SIZE:
            raise ValueError(f"vocab_size must be {VOCAB_SIZE} (UTF-8 bytes), not {self.vocab_size}")
        for name in ("embed_dim", "hidden_size", "num_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown architecture fields: {sorted(unknown)}")
        return cls(**data)
