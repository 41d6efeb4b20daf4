"""Service settings: the command line, then CODELSTM_* environment variables, then an optional TOML file
(`serve --config`), then the defaults below; bad values and unknown file keys are rejected at start-up."""

from __future__ import annotations

import difflib
import ipaddress
import tomllib
from pathlib import Path

from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict,
                               TomlConfigSettingsSource)
from typing_extensions import Annotated

from codelstm.model.context import ContextConfig
from codelstm.model.workspaces import index_bytes_per_byte


class ConfigFileError(ValueError):
    """The config file is missing, is not TOML, or names a setting that does not exist."""


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
    batch_window_ms: float = Field(2.0, ge=0.0)  # how long a lone request waits for company (if clients came together lately)
    max_batch: int = Field(64, ge=1)  # requests advanced together
    request_timeout_s: float = Field(10.0, gt=0)  # deadline per request
    supersede: bool = True  # a new request with the same document_id (and key) replaces the older one in flight
    shutdown_grace_s: float = Field(10.0, ge=0)  # on SIGTERM, how long requests in flight may still run
    cache_mb: int = Field(256, ge=0)  # state cache budget; 0 disables the cache
    cache_interval: int = Field(256, ge=16)  # bytes between cached states
    cold_prefix_cap: int = Field(4096, ge=64)  # bytes read of a prefix without document_id
    threads: int | None = Field(None, ge=1)  # torch threads for prefixes and big steps (small ones use one); None: available CPUs - 1
    onednn: bool = False  # search steps on nn.LSTM with oneDNN, not the written-out step: 2x slower for a few beams here (bench/step_time.py)
    onednn_prefill: bool = True  # oneDNN for reading prefixes: 2-3x faster over a sequence (bench/step_time.py)
    prefill_wait_ms: float = Field(100.0, ge=0.0)  # under load, uncached prefixes wait this long to be read together
    kernel_cache_entries: int = Field(128, ge=1)  # LSTM call shapes oneDNN and ideep keep compiled (~0.9 MB each)
    quantize: Literal["none", "int8"] = "none"  # int8: dynamic quantisation of LSTM and output weights
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"  # auto: bfloat16 where the CPU computes it natively
    explore_max_chars: int = Field(8192, ge=16, le=1 << 20)  # UTF-8 bytes the neuron explorer traces per request
    explore_cache_mb: int = Field(512, ge=0)  # memory for the explorer's recent traces (least recently used go)
    workspace_mb: int = Field(512, ge=1)  # memory for uploaded workspaces and their context indexes (LRU evicted)
    workspace_max_mb: int = Field(2, ge=1)  # text one workspace may hold (its index takes ~130x); more gets 413
    # context models mixed into completions (docs/context.md): auto = workspace when the model has a
    # mixer.json, else none; document = over the text read only; document/workspace need a mixer.json
    context: Literal["auto", "none", "document", "workspace"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"  # codelstm's and uvicorn's loggers
    log_format: Literal["text", "json"] = "text"  # json: one object per line (docs/deploy.md lists the keys)

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource):
        """First source wins: keyword arguments (the command line), environment, the TOML file (only when
        `load_settings` names one), file secrets."""
        return init_settings, env_settings, dotenv_settings, KnownKeysToml(settings_cls), file_secret_settings

    @model_validator(mode="after")
    def _a_full_workspace_fits(self) -> "ServerSettings":
        """A workspace at its size limit must fit the memory for workspaces once indexed, or it would push
        every other workspace out and still overrun the budget."""
        need = self.workspace_max_mb * index_bytes_per_byte(ContextConfig())
        if need > self.workspace_mb:
            raise ValueError(f"workspace_max_mb={self.workspace_max_mb} needs workspace_mb >= {need}: a workspace's "
                             f"context index takes {index_bytes_per_byte(ContextConfig())} bytes per byte of its text")
        return self

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


class KnownKeysToml(TomlConfigSettingsSource):
    """pydantic-settings' TOML source, strict: a key that is no setting is an error naming it (a typo in a
    config file must not silently leave the default in place), as are a missing or malformed file."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        path = settings_cls.model_config.get("toml_file")
        if path is not None and not Path(path).is_file():
            raise ConfigFileError(f"config file {str(path)!r} not found")
        try:
            super().__init__(settings_cls)
        except tomllib.TOMLDecodeError as e:
            raise ConfigFileError(f"config file {str(path)!r} is not valid TOML: {e}") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigFileError(f"cannot read config file {str(path)!r}: {e}") from None
        known = settings_cls.model_fields
        for key in self.toml_data:
            if key not in known:
                close = difflib.get_close_matches(key, list(known), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigFileError(f"unknown setting {key!r} in config file {str(path)!r}{hint}; "
                                      "the settings are the top-level keys of docs/codelstm.example.toml")


def load_settings(config_file: Path | str | None = None, **overrides) -> ServerSettings:
    """The service settings: `overrides` (what the command line gave) win over CODELSTM_* variables, which
    win over `config_file` (TOML, keys named as the fields above), which wins over the defaults."""
    if config_file is None:
        return ServerSettings(**overrides)

    class FromFile(ServerSettings):
        model_config = SettingsConfigDict(toml_file=Path(config_file))

    return FromFile(**overrides)
