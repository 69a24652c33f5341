"""HTTP: the catalog's route per model, and the error shape every HTTP answer shares.

`model_http_app` is one model's FastAPI app (mounted by Serve under /<name>); `install_error_handlers`
gives any FastAPI app the single JSON error shape, so no traceback ever reaches a client.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from serve import __version__
from serve.catalog import Entry
from serve.errors import BadRequest, ErrorBody, InvalidPayload, NotFound, ServeError, field_problems
from serve.protocols.types import ModelInfo, QueryRequest, QueryResponse

logger = logging.getLogger("runway_models")
ERROR_RESPONSES = {code: {"model": ErrorBody} for code in (400, 404, 413, 422, 503)}


def error_response(exc: ServeError) -> JSONResponse:
    return JSONResponse(exc.body().model_dump(), status_code=exc.status, headers=exc.headers)


def as_serve_error(exc: Exception) -> ServeError:
    """Map framework exceptions onto our hierarchy; anything unexpected becomes a bare 500."""
    if isinstance(exc, ServeError):
        return exc
    if isinstance(exc, RequestValidationError):
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return BadRequest("request body is not valid JSON")
        return InvalidPayload("; ".join(field_problems(errors, skip=1, empty="body")))
    if isinstance(exc, StarletteHTTPException):
        error = ServeError(str(exc.detail))
        error.status, error.code = exc.status_code, "not_found" if exc.status_code == 404 else "http_error"
        return error
    logger.exception("unhandled error", exc_info=exc)
    return ServeError("internal error; see the server log")


def install_error_handlers(app: FastAPI) -> None:
    async def handle(_: Request, exc: Exception) -> JSONResponse:
        return error_response(as_serve_error(exc))

    for exc_type in (ServeError, RequestValidationError, StarletteHTTPException, Exception):
        app.add_exception_handler(exc_type, handle)


def model_http_app(entry: Entry, runner) -> FastAPI:
    """FastAPI app of one model: POST <route> runs the model, GET / describes it."""
    output_type = runner.output_type or dict  # a model that failed to load still documents its route
    description = entry.description.text if entry.description else None
    app = FastAPI(title=f"runway-models: {entry.name}", version=__version__, description=description)
    install_error_handlers(app)

    @app.api_route(entry.query.http.route, methods=[entry.query.http.method],
                   response_model=QueryResponse[output_type], responses=ERROR_RESPONSES,
                   summary=f"Run {entry.name} on one image")
    async def query(request: QueryRequest) -> QueryResponse:
        return await runner.query(request, transport="http")

    @app.get("/", response_model=ModelInfo, summary=f"Describe {entry.name}: status, inputs, outputs")
    async def describe_model() -> ModelInfo:
        return runner.info()

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE"], include_in_schema=False)
    async def unknown(path: str):
        raise NotFound(f"no route /{entry.name}/{path}; the model answers {entry.http_path}")

    return app
