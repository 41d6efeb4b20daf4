"""Request and response bodies of the HTTP API (SPEC section 5)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator


class CompleteRequest(BaseModel):
    prefix: str
    suffix: str = ""
    document_id: str | None = Field(None, max_length=2048)
    language: str | None = Field(None, max_length=64)
    mode: Literal["token", "line", "block"] = "line"
    max_chars: int = Field(64, ge=1, le=512)
    n: int = Field(3, ge=1, le=16)
    beam_width: int | None = Field(None, ge=1, le=32)
    stop: list[str] = Field(default_factory=list, max_length=8)
    temperature: float | None = Field(None, gt=0, le=10)
    seed: int | None = None

    @field_validator("stop")
    @classmethod
    def _stops_not_empty(cls, value: list[str]) -> list[str]:
        if any(not s or len(s) > 64 for s in value):
            raise ValueError("stop strings must be 1 to 64 characters")
        return value


class CompletionOut(BaseModel):
    text: str
    logprob: float
    finish_reason: Literal["stop", "length", "newline", "identifier_end"]


class Usage(BaseModel):
    prefix_chars: int
    fed_chars: int
    cached_chars: int
    generated_chars: int


class Timing(BaseModel):
    queue: float
    compute: float
    total: float


class CompleteResponse(BaseModel):
    id: str
    model: str
    completions: list[CompletionOut]
    usage: Usage
    timing_ms: Timing


class OpenAICompletionsRequest(BaseModel):
    """The subset of OpenAI's /v1/completions that editor plugins send; max_tokens counts characters."""

    model: str | None = None
    prompt: str
    suffix: str | None = None
    max_tokens: int = Field(64, ge=1, le=512)
    n: int = Field(1, ge=1, le=16)
    stop: str | list[str] | None = None
    temperature: float | None = Field(None, ge=0, le=10)
    user: str | None = None


class ReloadRequest(BaseModel):
    path: str


class ErrorBody(BaseModel):
    type: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


# -- neuron explorer (docs/explorer.md) ------------------------------------------------------------

Quantity = Literal["h", "c", "i", "f", "o", "g"]  # hidden, cell, input/forget/output gates, candidate


class ActivationsRequest(BaseModel):
    """Per-byte activations of one layer; the text is limited by CODELSTM_EXPLORE_MAX_CHARS (UTF-8 bytes)."""

    text: str = Field(min_length=1)
    model: str | None = Field(None, max_length=64)  # null: the served model; "task:NAME": a trained task model
    layer: int = Field(0, ge=0)
    neurons: list[int] | None = Field(None, max_length=4096)  # null: every neuron of the layer
    quantities: list[Quantity] | None = Field(None, max_length=6)  # null: all the cell has (LSTM: 6, GRU: h)


class ActivationsResponse(BaseModel):
    model: str
    cell: str
    layer: int
    num_layers: int
    hidden_size: int
    bytes: int  # UTF-8 bytes of the text: the length of every value list
    neurons: list[int]
    values: dict[str, list[list[float]]]  # quantity -> one list per requested neuron -> one value per byte
    max_gate_error: float
    timing_ms: float


class NeuronsRequest(BaseModel):
    """Find neurons: rank units by Pearson correlation with features of the text."""

    text: str = Field(min_length=1)
    model: str | None = Field(None, max_length=64)
    layers: list[int] | None = Field(None, max_length=64)  # null: every layer
    quantities: list[Quantity] = Field(default_factory=lambda: ["h", "c"], min_length=1, max_length=6)
    features: list[str] | None = Field(None, max_length=32)  # null: code features, or the task's own
    language: str | None = Field(None, max_length=64)  # picks the comment syntax; null: Python
    top: int = Field(5, ge=1, le=50)


class NeuronScoreOut(BaseModel):
    layer: int
    quantity: str
    neuron: int
    r: float


class FeatureRankingOut(BaseModel):
    name: str
    description: str
    defined: int
    constant: bool
    values: list[float | None]  # the feature at each byte; null where undefined
    best: list[NeuronScoreOut]


class NeuronsResponse(BaseModel):
    model: str
    bytes: int
    layers: list[int]
    quantities: list[str]
    features: list[FeatureRankingOut]
    timing_ms: float


class TrainTaskRequest(BaseModel):
    steps: int | None = Field(None, ge=10, le=5000)  # null: the task's explorer recipe
    seed: int = Field(0, ge=0, le=2**31 - 1)


class ExploreModelOut(BaseModel):
    id: str  # what the `model` field of /v1/activations and /v1/neurons takes
    name: str
    cell: str | None  # null: a task model not trained yet
    num_layers: int | None
    hidden_size: int | None
    quantities: list[str]
    task: str | None  # the synthetic task the model was trained on, if any
    description: str | None
    trained: bool
    train_seconds: float | None
    steps: int | None
    exact_match: float | None
    sample: str | None  # a text to explore it with
    features: list[str]  # what find-neurons ranks by default
