"""Every error leaves as JSON {"error": {"type", "message"}}; no stack trace reaches a client."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("codelstm.server")


class APIError(Exception):
    def __init__(self, status: int, type_: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.type, self.message, self.headers = status, type_, message, headers


def error_response(status: int, type_: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"type": type_, "message": message}}, status_code=status, headers=headers)


def _field(loc: tuple) -> str:
    """The field's path, without pydantic's union-branch tags ("function-after[...]", "literal[0]")."""
    parts = [str(p) for p in loc if p != "body" and (isinstance(p, int) or str(p).isidentifier())]
    return ".".join(parts) or "body"


def _describe_validation(exc: RequestValidationError) -> str:
    """One clause per field, naming it; for a field of several accepted types (OpenAI's `stop`: a string
    or a list), the branch that matched the input's type says what is wrong, not "should be a list"."""
    by_field: dict[str, list[str]] = {}
    for err in exc.errors():
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        found = by_field.setdefault(_field(err.get("loc", ())), [])
        if msg not in found:
            found.append(msg)
    parts = []
    for name, msgs in list(by_field.items())[:5]:
        specific = [m for m in msgs if not m.startswith("Input should be a valid")] or msgs
        parts.append(f"{name}: {' or '.join(specific)}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError):
        return error_response(exc.status, exc.type, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError):
        return error_response(422, "invalid_request", _describe_validation(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException):
        kind = {400: "invalid_json", 404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, kind, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "internal_error", "internal server error")
