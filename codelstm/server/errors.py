"""Every error leaves as JSON, never with a stack trace: {"error": {"type", "message"}} on the native routes,
OpenAI's {"error": {"message", "type", "param", "code"}} on the OpenAI-style ones (what its clients parse)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("codelstm.server")

OPENAI_CODES = {"unauthorized": "invalid_api_key"}  # native type -> OpenAI code, where OpenAI has its own name


class APIError(Exception):
    def __init__(self, status: int, type_: str, message: str, headers: dict[str, str] | None = None,
                 param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.type, self.message, self.headers, self.param = status, type_, message, headers, param


def error_response(status: int, type_: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"type": type_, "message": message}}, status_code=status, headers=headers)


def openai_error_body(status: int, type_: str, message: str, param: str | None = None) -> dict:
    """OpenAI's error object: `type` is its class (invalid_request_error, server_error), `code` says which
    (our native type: overloaded, timeout, superseded, invalid_request, ...), `param` the field at fault."""
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return {"error": {"message": message, "type": kind, "param": param, "code": OPENAI_CODES.get(type_, type_)}}


def is_openai_route(request: Request) -> bool:
    path = request.url.path
    return path == "/v1/completions" or path == "/v1/models" or path.startswith("/v1/models/")


def _respond(request: Request, status: int, type_: str, message: str, headers: dict[str, str] | None = None,
             param: str | None = None) -> JSONResponse:
    if is_openai_route(request):
        return JSONResponse(openai_error_body(status, type_, message, param), status_code=status, headers=headers)
    return error_response(status, type_, message, headers)


def _field(loc: tuple) -> str:
    """The field's path, without pydantic's union-branch tags ("function-after[...]", "literal[0]"); a header
    by its name."""
    if len(loc) >= 2 and loc[0] == "header":
        return str(loc[1])
    parts = [str(p) for p in loc if p != "body" and (isinstance(p, int) or str(p).isidentifier())]
    return ".".join(parts) or "body"


def _describe_validation(exc: RequestValidationError) -> tuple[str, str | None]:
    """One clause per field, naming it, and the first field's name; for a field of several accepted types
    (OpenAI's `stop`: a string or a list), the branch that matched the input's type says what is wrong,
    not "should be a list"."""
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
    first = next(iter(by_field), None)
    return "; ".join(parts) or "invalid request", first


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError):
        return _respond(request, exc.status, exc.type, exc.message, exc.headers, exc.param)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        message, field = _describe_validation(exc)
        return _respond(request, 422, "invalid_request", message, param=field)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        kind = {400: "invalid_json", 404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _respond(request, exc.status_code, kind, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unhandled error")
        return _respond(request, 500, "internal_error", "internal server error")
