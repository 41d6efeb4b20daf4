"""Client-supplied settings (initializationOptions / didChangeConfiguration), camelCase on the wire."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

_CAMEL = {"server_url": "serverUrl", "api_key": "apiKey", "max_chars": "maxChars", "mode": "mode",
          "languages": "languages", "timeout_ms": "timeoutMs", "workspace": "workspace",
          "workspace_max_file_bytes": "workspaceMaxFileBytes", "workspace_max_bytes": "workspaceMaxBytes",
          "workspace_debounce_ms": "workspaceDebounceMs", "workspace_exclude": "workspaceExclude"}
_BOUNDS = {"max_chars": (1, 512), "timeout_ms": (10, 60_000), "workspace_max_file_bytes": (1 << 10, 1 << 20),
           "workspace_max_bytes": (1 << 10, 256 << 20), "workspace_debounce_ms": (0, 60_000)}


@dataclass(frozen=True)
class Options:
    server_url: str = "http://127.0.0.1:8000"  # the codelstm HTTP service
    api_key: str | None = None  # sent as a bearer token when set
    max_chars: int = 64  # longest inline completion
    mode: str = "line"  # inline completions: "line" or "block"
    languages: tuple[str, ...] = ()  # enabled language ids; empty: every language
    timeout_ms: int = 500  # a slower backend answer is dropped and the editor gets nothing
    workspace: bool = True  # upload the workspace folders' source files as completion context (SPEC section 8)
    workspace_max_file_bytes: int = 256 << 10  # bigger files are left out (generated code, data)
    workspace_max_bytes: int = 2_000_000  # upload stops here; below the service's default 2 MiB per workspace
    workspace_debounce_ms: int = 1500  # an edited document is uploaded this long after its last change
    workspace_exclude: tuple[str, ...] = ()  # more .gitignore-style patterns to leave out

    def enabled_for(self, language_id: str | None) -> bool:
        return not self.languages or (language_id or "") in self.languages


def merge_options(current: Options, raw: Any) -> tuple[Options, list[str]]:
    """Apply the recognised, valid settings of `raw`; return the new options and one problem per bad value.

    Bad options never stop the server: they are reported and the previous value stays.
    """
    if raw is None:
        return current, []
    if not isinstance(raw, dict):
        return current, [f"settings must be an object, got {type(raw).__name__}"]
    if isinstance(raw.get("codelstm"), dict):  # {"codelstm": {...}} as VS Code-style clients nest it
        raw = raw["codelstm"]
    changes: dict[str, Any] = {}
    problems: list[str] = []
    for f in fields(Options):
        key = _CAMEL[f.name]
        if key not in raw:
            continue
        value = raw[key]
        try:
            changes[f.name] = _validate(f.name, value)
        except ValueError as e:
            problems.append(f"{key}: {e}")
    return replace(current, **changes), problems


def _validate(name: str, value: Any) -> Any:
    if name == "server_url":
        if not isinstance(value, str) or not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")
    if name == "api_key":
        if value is not None and not isinstance(value, str):
            raise ValueError("must be a string")
        return value or None
    if name in _BOUNDS:
        low, high = _BOUNDS[name]
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ValueError(f"must be an integer from {low} to {high}")
        return value
    if name == "workspace":
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if name == "mode":
        if value not in ("line", "block"):
            raise ValueError("must be 'line' or 'block'")
        return value
    if name in ("languages", "workspace_exclude"):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError("must be a list of strings")
        return tuple(value)
    raise ValueError("unknown option")
