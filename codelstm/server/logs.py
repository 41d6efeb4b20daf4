"""The service's logs: one access line per HTTP request, request ids, and text or JSON formatting.

`RequestLog` is plain ASGI middleware (no body buffering, so streamed responses leave chunk by chunk). It
takes the client's `X-Request-ID` when it is a sane token (1-128 visible ASCII characters) or makes one,
puts it on the request state (`request.state.request_id`), echoes it in the response's `X-Request-ID`
header, and once the response is finished writes one line on the `codelstm.access` logger. What only the
completion service knows (document, mode, bytes fed and cached, queue and compute time) it adds with
`note_request`, from wherever in the request's task it is; requests that fail before the service ran
log "-" (text) or null (JSON) for those fields.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import time
import uuid
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any, TextIO

access_log = logging.getLogger("codelstm.access")

# The access line's fields, in this order, in both formats (JSON: null when unknown; text: "-").
ACCESS_FIELDS = ("request_id", "method", "path", "status", "duration_ms", "document", "mode", "fed_bytes",
                 "cached_bytes", "queue_ms", "compute_ms", "client")
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})  # probes: their lines are DEBUG, not INFO
MAX_DOCUMENT_CHARS = 256  # a document id is client text up to 2 KB: the log keeps its head

_SANE_ID = re.compile(r"[!-~]{1,128}")
_current: ContextVar[dict[str, Any] | None] = ContextVar("codelstm_request", default=None)


def note_request(**fields: Any) -> None:
    """Add fields (document, mode, fed_bytes, cached_bytes, queue_ms, compute_ms) to the access line of the
    request being handled; does nothing outside a request (e.g. in tests that call the service directly)."""
    record = _current.get()
    if record is not None:
        record.update(fields)


def current_request_id() -> str | None:
    record = _current.get()
    return None if record is None else record["request_id"]


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's X-Request-ID when it is a sane token, else a fresh one (a proxy's id links its logs to ours;
    anything else could forge or break log lines)."""
    for name, value in headers:
        if name.lower() == b"x-request-id":
            try:
                text = value.decode("ascii")
            except UnicodeDecodeError:
                break
            if _SANE_ID.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex


class RequestLog:
    """ASGI middleware: request id in and out, one access line per request (also for errors)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request_id = request_id_from(scope.get("headers", []))
        scope.setdefault("state", {})["request_id"] = request_id
        record: dict[str, Any] = {"request_id": request_id}
        token = _current.set(record)
        started = time.perf_counter()
        status: int | None = None
        header = (b"x-request-id", request_id.encode("ascii"))

        async def send_with_id(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, header]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except BaseException as e:
            if status is None:  # nothing was sent: a cancelled request (the client went away) or a crash
                status = 499 if isinstance(e, asyncio.CancelledError) else 500
            raise
        finally:
            _current.reset(token)
            client = scope.get("client")
            record.update(method=scope.get("method"), path=scope.get("path"), status=status,
                          duration_ms=round((time.perf_counter() - started) * 1000, 3),
                          client=client[0] if client else None)
            level = logging.DEBUG if scope.get("path") in QUIET_PATHS else logging.INFO
            access_log.log(level, "%s %s %s", record["method"], record["path"], status,
                           extra={"fields": access_fields(record), "text_skip": ("method", "path", "status")})


def access_fields(record: dict[str, Any]) -> dict[str, Any]:
    """Every access field, in order, None where unknown; times rounded to what a log reader needs."""
    out = {name: record.get(name) for name in ACCESS_FIELDS}
    for name in ("queue_ms", "compute_ms"):
        if out[name] is not None:
            out[name] = round(float(out[name]), 3)
    doc = out["document"]
    if isinstance(doc, str) and len(doc) > MAX_DOCUMENT_CHARS:
        out["document"] = doc[:MAX_DOCUMENT_CHARS] + "..."
    return out


class RequestIdFilter(logging.Filter):
    """Tags every record logged while a request is handled (warnings, errors) with that request's id."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        return True


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


_PLAIN = re.compile(r"[!-~]+")


def _logfmt(value: Any) -> str:
    """A value for key=value text: "-" for unknown, quoted and escaped when it holds spaces, quotes, '=' or
    control characters (a document id is client text: it must not be able to start a fake log line)."""
    if value is None:
        return "-"
    text = str(value)
    if _PLAIN.fullmatch(text) and '"' not in text and "=" not in text:
        return text
    return json.dumps(text)


class TextFormatter(logging.Formatter):
    """`TIME LEVEL LOGGER MESSAGE key=value ...`: the access line's fields in logfmt after its message."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record), record.levelname, record.name, record.getMessage()]
        fields: dict[str, Any] = getattr(record, "fields", None) or {}
        skip = getattr(record, "text_skip", ())
        parts += [f"{k}={_logfmt(v)}" for k, v in fields.items() if k not in skip]
        if not fields and getattr(record, "request_id", None):
            parts.append(f"request_id={_logfmt(record.request_id)}")
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id (null outside a request), and for
    access lines every field of ACCESS_FIELDS; exc_info holds a traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"time": _timestamp(record), "level": record.levelname, "logger": record.name,
                               "message": record.getMessage(), "request_id": getattr(record, "request_id", None)}
        out.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure_logging(level: str = "info", fmt: str = "text", stream: TextIO | None = None) -> None:
    """One stderr handler on the root logger in the chosen format. codelstm's and uvicorn's loggers log at
    `level`; other libraries only warnings and worse. uvicorn's own access log stays off (RequestLog's
    lines replace it) and its start-up and error lines come out in the same format."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    for name in ("codelstm", "uvicorn"):
        logging.getLogger(name).setLevel(level.upper())
