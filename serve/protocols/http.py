"""HTTP: the catalog's route per model, and the error shape every HTTP answer shares.

`model_http_app` is one model's FastAPI app (mounted by Serve under /<name>); `install_error_handlers`
gives any FastAPI app the single JSON error shape, so no traceback ever reaches a client.
"""

from __future__ import annotations

import logging

from collections.abc import Callable, Sequence

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from serve import __version__
from serve.catalog import Entry
from serve.errors import (ErrorBody, InvalidJSON, InvalidPayload, MethodNotAllowed, NotFound, ServeError,
                          UnsupportedMediaType, field_problems)
from serve.protocols.types import ModelInfo, QueryRequest, QueryResponse

logger = logging.getLogger("runway_models")
ERROR_RESPONSES = {status: {"model": ErrorBody, "description": description} for status, description in {
    400: "invalid_json: the body is empty, truncated or not JSON",
    405: "method_not_allowed: the route answers the catalog's method only (see the Allow header)",
    408: "body_timeout: the body did not arrive within limits.body_timeout_s",
    413: "payload_too_large: the image is over limits.max_bytes or limits.max_pixels",
    415: "unsupported_media_type: the body must be sent as application/json",
    422: "invalid_payload / invalid_image: a field is missing or of the wrong type, bad base64, not an image",
    503: "model_unavailable / overloaded: not ready yet, or too busy; retry after Retry-After seconds",
}.items()}
ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"]


def error_response(exc: ServeError) -> JSONResponse:
    return JSONResponse(exc.body().model_dump(), status_code=exc.status, headers=exc.headers)


def is_json(content_type: str | None) -> bool:
    media_type = (content_type or "").split(";")[0].strip().lower()
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


def as_serve_error(exc: Exception, content_type: str | None = None) -> ServeError:
    """Map framework exceptions onto our hierarchy; anything unexpected becomes a bare 500. `content_type`: the
    HTTP request's ("" when it sent none); None outside HTTP."""
    if isinstance(exc, ServeError):
        return exc
    if isinstance(exc, RequestValidationError):
        errors = exc.errors()
        if content_type is not None and not is_json(content_type):  # "": a body sent without a Content-Type
            sent = f"not {content_type:.60}" if content_type else "and no Content-Type was sent"
            return UnsupportedMediaType(f"the body must be JSON sent as application/json, {sent}")
        if any(e.get("type") == "json_invalid" for e in errors):
            return InvalidJSON("the body is not valid JSON")
        if [tuple(e["loc"]) for e in errors] == [("body",)] and errors[0].get("type") == "missing":
            return InvalidJSON("the body is empty; send a JSON object such as {\"data\": \"data:image/jpeg;base64,...\"}")
        return InvalidPayload("; ".join(field_problems(errors, skip=1, empty="body")))
    if isinstance(exc, StarletteHTTPException):
        if exc.status_code == 400:  # Starlette's own JSON parse failure (e.g. nesting too deep for the parser)
            return InvalidJSON("the body is not valid JSON")
        error = ServeError(str(exc.detail))
        error.status, error.code = exc.status_code, "not_found" if exc.status_code == 404 else "http_error"
        error.headers = dict(exc.headers or {})
        return error
    logger.exception("unhandled error", exc_info=exc)
    return ServeError("internal error; see the server log")


def install_error_handlers(app: FastAPI) -> None:
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        return error_response(as_serve_error(exc, request.headers.get("content-type", "")))

    for exc_type in (ServeError, RequestValidationError, StarletteHTTPException, Exception):
        app.add_exception_handler(exc_type, handle)


def model_http_app(entry: Entry, runner, routers: Sequence[APIRouter] = (),
                   guard: Callable[[str | None], None] | None = None) -> FastAPI:
    """FastAPI app of one model: POST <route> runs the model, GET / describes it; `routers` (other protocols,
    e.g. the hosted /v1 and the v2 routes) come before the catch-all that answers unknown paths. `guard`, when
    given, is called with the Authorization header before the query route runs and raises to refuse
    (serving.hosted.protect_original_routes)."""
    output_type = runner.output_type or dict  # a model that failed to load still documents its route
    description = entry.description.text if entry.description else None
    app = FastAPI(title=f"runway-models: {entry.name}", version=__version__, description=description)
    install_error_handlers(app)

    def authorize(request: Request) -> None:
        if guard:
            guard(request.headers.get("authorization"))

    @app.api_route(entry.query.http.route, methods=[entry.query.http.method],
                   response_model=QueryResponse[output_type], responses=ERROR_RESPONSES,
                   summary=f"Run {entry.name} on one image", dependencies=[Depends(authorize)])
    async def query(request: QueryRequest) -> QueryResponse:
        return await runner.query(request, transport="http")

    @app.get("/", response_model=ModelInfo, summary=f"Describe {entry.name}: status, inputs, outputs")
    async def describe_model() -> ModelInfo:
        return runner.info()

    for router in routers:
        app.include_router(router)

    @app.api_route("/{path:path}", methods=ANY_METHOD, include_in_schema=False)
    async def unknown(request: Request, path: str):
        if f"/{path}" == entry.query.http.route:
            raise MethodNotAllowed(f"{request.method} is not allowed on {entry.http_path}; use "
                                   f"{entry.query.http.method}", allow=[entry.query.http.method])
        if path == "":
            raise MethodNotAllowed(f"{request.method} is not allowed on /{entry.name}; use GET", allow=["GET"])
        raise NotFound(f"no route /{entry.name}/{path}; the model answers {entry.http_path}")

    return app
