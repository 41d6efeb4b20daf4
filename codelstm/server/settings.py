"""Service settings, from CODELSTM_* environment variables; bad values are rejected at start-up."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from typing_extensions import Annotated


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CODELSTM_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    model_path: Path | None = None  # None (or empty, as compose passes an unset variable): the bundled model
    models_dir: Path = Path("models")  # /v1/model/reload loads only checkpoints inside this folder
    model_name: str = "default"
    api_keys: Annotated[list[str], NoDecode] = []  # comma-separated; empty: no authentication
    admin_key: str | None = None  # needed for /v1/model/reload; unset: reload disabled
    max_body_bytes: int = Field(1 << 20, ge=1024)  # larger bodies get 413
    max_queue: int = Field(256, ge=1)  # requests waiting or running; more get 503
    batch_window_ms: float = Field(2.0, ge=0.0)  # how long a lone request waits for company
    max_batch: int = Field(64, ge=1)  # requests advanced together
    request_timeout_s: float = Field(10.0, gt=0)  # deadline per request
    supersede: bool = True  # a new request with the same document_id (and key) replaces the older one in flight
    shutdown_grace_s: float = Field(10.0, ge=0)  # on SIGTERM, how long requests in flight may still run
    cache_mb: int = Field(256, ge=0)  # state cache budget; 0 disables the cache
    cache_interval: int = Field(256, ge=16)  # bytes between cached states
    cold_prefix_cap: int = Field(4096, ge=64)  # bytes read of a prefix without document_id
    threads: int | None = Field(None, ge=1)  # torch threads for prefixes and big steps (small ones use one); None: cores - 1
    onednn: bool = False  # oneDNN LSTM kernels: 10x slower per batch-1 step here (bench/step_time.py)
    onednn_prefill: bool = True  # oneDNN for reading prefixes: 2-3x faster over a sequence (bench/step_time.py)
    prefill_wait_ms: float = Field(100.0, ge=0.0)  # under load, uncached prefixes wait this long to be read together
    quantize: Literal["none", "int8"] = "none"  # int8: dynamic quantisation of LSTM and output weights
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"  # auto: bfloat16 where the CPU computes it natively
    explore_max_chars: int = Field(8192, ge=16, le=1 << 20)  # UTF-8 bytes the neuron explorer traces per request
    explore_cache_mb: int = Field(512, ge=0)  # memory for the explorer's recent traces (least recently used go)
    workspace_mb: int = Field(256, ge=1)  # memory for uploaded workspaces and their context indexes (LRU evicted)
    workspace_max_mb: int = Field(16, ge=1)  # text bytes one workspace may hold; a bigger upload gets 413
    # context models mixed into completions (docs/context.md): auto = workspace when the model has a
    # mixer.json, else none; document = over the text read only; document/workspace need a mixer.json
    context: Literal["auto", "none", "document", "workspace"] = "auto"

    @field_validator("model_path", "admin_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value):
        """docker compose passes an unset ${VAR:-} as "": that means the default, not Path('.')."""
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def loopback(self) -> bool:
        """Bound to this machine only (127.0.0.0/8, ::1, localhost): nobody else can reach the service."""
        return is_loopback(self.host)

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value):
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything
