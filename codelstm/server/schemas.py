"""Request and response bodies of the HTTP API (SPEC section 5).

Every field is checked here, at the edge, with the same rules for the native and the OpenAI-style
endpoint: text that cannot be encoded as UTF-8 (lone surrogates), stop strings that are empty or
long, temperatures that make sampling degenerate. A request that passes never fails inside the
worker because of its own fields.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AfterValidator, BaseModel, Field
from typing_extensions import Annotated

MAX_STOPS = 8
MAX_STOP_CHARS = 64
MIN_TEMPERATURE = 1e-3  # below this, softmax(logits / T) is a one-hot in float32 anyway: use beam search
MAX_TEMPERATURE = 10.0  # above this, sampling is noise


def _utf8(value: str) -> str:
    """Reject lone surrogates (JSON allows "\\ud800"; UTF-8 cannot carry it), naming the position."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"lone surrogate U+{ord(value[e.start]):04X} at character {e.start}: "
                         "text must be valid Unicode") from None
    return value


def _stops(value: list[str]) -> list[str]:
    for i, s in enumerate(value):
        if not 1 <= len(s) <= MAX_STOP_CHARS:
            raise ValueError(f"stop string {i} has {len(s)} characters: each must have 1 to {MAX_STOP_CHARS}")
    return value


def _stop(value: str) -> str:
    return _stops([value])[0]


Text = Annotated[str, AfterValidator(_utf8)]
StopString = Annotated[Text, AfterValidator(_stop)]
StopList = Annotated[list[Text], Field(max_length=MAX_STOPS), AfterValidator(_stops)]
Temperature = Annotated[float, Field(ge=MIN_TEMPERATURE, le=MAX_TEMPERATURE)]
WORKSPACE_ID_PATTERN = r"^[A-Za-z0-9._:@/+=-]+$"  # what PUT /v1/workspaces/{workspace_id} accepts
WorkspaceIdField = Annotated[str, Field(min_length=1, max_length=200, pattern=WORKSPACE_ID_PATTERN)]


class CompleteRequest(BaseModel):
    prefix: Text
    suffix: Text = ""
    document_id: Text | None = Field(None, max_length=2048)
    language: Text | None = Field(None, max_length=64)
    mode: Literal["token", "line", "block"] = "line"
    max_chars: int = Field(64, ge=1, le=512)
    n: int = Field(3, ge=1, le=16)
    beam_width: int | None = Field(None, ge=1, le=32)
    stop: StopList = Field(default_factory=list)
    temperature: Temperature | None = None
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    stream: bool = False  # Server-Sent Events: the decided text of each completion as it grows (docs/api.md)
    workspace_id: WorkspaceIdField | None = None  # also the X-Codelstm-Workspace header (SPEC section 8)


class CompletionOut(BaseModel):
    text: str
    logprob: float
    finish_reason: Literal["stop", "length", "newline", "identifier_end"]


class Usage(BaseModel):
    prefix_chars: int
    fed_chars: int
    cached_chars: int
    generated_chars: int
    # context models mixed in (docs/context.md): none, document (the text read) or workspace (also the workspace)
    context: Literal["none", "document", "workspace"] = "none"
    # the request's workspace: none asked, used, missing (not on this replica for this key: upload it
    # again; answered from the document alone), or disabled (this server does not use workspaces)
    workspace: Literal["none", "used", "missing", "disabled"] = "none"


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


MAX_PROMPTS = 16  # prompts of one /v1/completions request (each is its own job, batched together)
MAX_COMPLETION_BYTES = 512  # the native max_chars limit: a larger OpenAI max_tokens is served as this


class StreamOptions(BaseModel):
    include_usage: bool = False  # one more chunk before [DONE], with no choices and the request's usage


class OpenAICompletionsRequest(BaseModel):
    """OpenAI's /v1/completions as editor plugins send it. A token is one UTF-8 byte (the model reads
    bytes): max_tokens and the usage count bytes, which are characters in ASCII code. Fields OpenAI has and
    this server does not use (top_p, presence_penalty, frequency_penalty, logit_bias, best_of) are ignored."""

    model: str | None = Field(None, max_length=256)  # any name is served by the loaded model
    prompt: Text | Annotated[list[Text], Field(min_length=1, max_length=MAX_PROMPTS)]
    suffix: Text | None = None
    max_tokens: int | None = Field(None, ge=1)  # null: 64; above 512: 512
    n: int = Field(1, ge=1, le=16)
    stop: StopString | StopList | None = None  # OpenAI accepts one string or a list
    temperature: Literal[0] | Temperature | None = None  # 0 or null: beam search
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    echo: bool = False  # each choice's text starts with its prompt
    logprobs: int | None = None  # not supported: a number is refused with 400
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: Text | None = Field(None, max_length=2000)  # the document id when X-Codelstm-Document is absent
    mode: Literal["token", "line", "block"] | None = None  # extension; null: block above 80 bytes, else line

    @property
    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)

    def native(self, document_id: str | None = None) -> list[CompleteRequest]:
        """One /v1/complete request per prompt; every field was already checked by the same rules. With
        several prompts, prompt i > 0 uses the document id `<id>#<i>`, so they neither supersede each other
        nor share a cache entry."""
        stop = [self.stop] if isinstance(self.stop, str) else (self.stop or [])
        max_chars = min(self.max_tokens or 64, MAX_COMPLETION_BYTES)
        mode = self.mode or ("block" if max_chars > 80 else "line")
        return [CompleteRequest(prefix=prompt, suffix=self.suffix or "", mode=mode, max_chars=max_chars, n=self.n,
                                stop=stop, temperature=self.temperature or None, seed=self.seed,
                                document_id=None if document_id is None else document_id if i == 0
                                else f"{document_id}#{i}")
                for i, prompt in enumerate(self.prompts)]


class ReloadRequest(BaseModel):
    path: Text = Field(min_length=1, max_length=4096)  # a checkpoint folder under CODELSTM_MODELS_DIR


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
