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
