"""One error hierarchy with one JSON shape, `{"error": ..., "detail": ...}`, for HTTP and socket.io alike."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    error: str = Field(description="stable machine-readable code, e.g. invalid_image")
    detail: str = Field(description="what went wrong, for humans")


class ServeError(Exception):
    status: int = 500
    code: str = "internal_error"
    headers: dict[str, str] = {}

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail

    def body(self) -> ErrorBody:
        return ErrorBody(error=self.code, detail=self.detail)


class BadRequest(ServeError):
    status, code = 400, "bad_request"


class InvalidJSON(BadRequest):
    """Empty, truncated or too deeply nested: one code for every body that is not JSON."""

    code = "invalid_json"


class WebSocketOnly(BadRequest):
    """socket.io long-polling on a model with several replicas: its session would live in one replica only."""

    code = "websocket_only"


class MethodNotAllowed(ServeError):
    status, code = 405, "method_not_allowed"

    def __init__(self, detail: str, allow: list[str]):
        super().__init__(detail)
        self.headers = {"Allow": ", ".join(allow)}


class BodyTimeout(ServeError):
    status, code = 408, "body_timeout"


class UnsupportedMediaType(ServeError):
    status, code = 415, "unsupported_media_type"


class InvalidPayload(ServeError):
    status, code = 422, "invalid_payload"


class InvalidImage(ServeError):
    status, code = 422, "invalid_image"


class PayloadTooLarge(ServeError):
    status, code = 413, "payload_too_large"


class UnknownModel(ServeError):
    status, code = 404, "unknown_model"


class NotFound(ServeError):
    status, code = 404, "not_found"


class ModelUnavailable(ServeError):
    status, code = 503, "model_unavailable"
    headers = {"Retry-After": "5"}


class Overloaded(ServeError):
    status, code = 503, "overloaded"
    headers = {"Retry-After": "1"}


class TooManyRequests(ServeError):
    """Overload on the hosted routes: Runway's client retries 429 (and gives up on 503)."""

    status, code = 429, "overloaded"

    def __init__(self, overloaded: Overloaded):
        super().__init__(overloaded.detail)
        self.headers = dict(overloaded.headers)


class Unauthorized(ServeError):
    """No token, or a wrong one, for a private model. The detail never quotes what was sent."""

    status, code = 401, "unauthorized"
    headers = {"WWW-Authenticate": "Bearer"}


class Forbidden(ServeError):
    status, code = 403, "forbidden"


def location(parts: Iterable[Any], empty: str = "(object)") -> str:
    """An error's location (pydantic's `loc`, a JSON Schema error's path) as `a.b.0.c`; `empty` when it has none."""
    return ".".join(str(part) for part in parts) or empty


def field_problems(errors: Iterable[dict[str, Any]], prefix: str = "", skip: int = 0, empty: str = "(top level)",
                   show_input: bool = False) -> list[str]:
    """pydantic's errors as `prefix.a.b: message` lines: the one formatter for catalog, values, Serve config
    and request errors. `skip` drops leading location parts (FastAPI's "body"); `show_input` quotes the value."""
    lines = []
    for err in errors:
        where = location(err["loc"][skip:], empty)
        line = f"{prefix}{where}: {err['msg']}"
        if show_input:
            line += f" (got {err.get('input')!r:.80})"
        lines.append(line)
    return lines
