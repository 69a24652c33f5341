"""Open Inference Protocol over REST (KServe v2 / Triton HTTP), with Triton's binary tensor data extension.

Each model replica answers `/<model>/v2/...` itself (one hop: tritonclient takes the base path in its URL,
`InferenceServerClient("host:8000/yolo")`); the catalog app answers the server-wide `/v2/...` and hands model routes
to the model's replica (`forward`), so a plain `InferenceServerClient("host:8000")` works too. Errors are
`{"error": "..."}` with the native route's status codes.
"""

from __future__ import annotations

import json
import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from serve.catalog import V2_PATH as PREFIX
from serve.errors import BadRequest, ServeError, UnsupportedMediaType, field_problems
from serve.protocols.v2 import V2Model, server_metadata
from serve.protocols.v2_tensors import InferRequest, InferResponse, ResponseOutput, Tensor, json_data, serialize, \
    tensor

logger = logging.getLogger("runway_models")
HEADER_LENGTH = "inference-header-content-length"
MODEL_PATHS = ["/models/{model}", "/models/{model}/versions/{version}"]


def is_v2_path(scope) -> bool:
    """Whether an ASGI request is one of the v2 routes (under the catalog's `/v2` or a model's `/<model>/v2`)."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    local = path[len(root):] if root and path.startswith(root) else path
    return local == PREFIX or local.startswith(PREFIX + "/")


def error_body(error: ServeError) -> dict:
    """The v2 error shape."""
    return {"error": error.detail}


def v2_error(error: Exception) -> JSONResponse:
    if not isinstance(error, ServeError):
        logger.exception("unhandled v2 error", exc_info=error)
        error = ServeError("internal error; see the server log")
    return JSONResponse(error_body(error), status_code=error.status, headers=error.headers)


def parse(body: bytes, header_length: str | None, content_encoding: str | None) -> tuple[InferRequest, list[Tensor]]:
    """A request body (JSON, or a JSON header of `Inference-Header-Content-Length` bytes followed by the inputs'
    binary data in order) -> the request and its input tensors."""
    if content_encoding not in (None, "", "identity"):
        raise UnsupportedMediaType(f"Content-Encoding {content_encoding:.40} is not supported; send the body "
                                   "uncompressed")
    try:
        size = len(body) if header_length is None else int(header_length)
    except ValueError:
        raise BadRequest(f"Inference-Header-Content-Length must be a number, not {header_length:.40}") from None
    if not 0 < size <= len(body):
        raise BadRequest(f"Inference-Header-Content-Length {size} does not fit a body of {len(body)} bytes")
    try:
        request = InferRequest.model_validate_json(body[:size])
    except ValidationError as exc:
        raise BadRequest("; ".join(field_problems(exc.errors(), empty="body"))) from None
    tensors, at = [], size
    for given in request.inputs:
        binary_size = (given.parameters or {}).get("binary_data_size")
        raw = None
        if binary_size is not None:
            if not isinstance(binary_size, int) or binary_size < 0 or at + binary_size > len(body):
                raise BadRequest(f"input {given.name}: binary_data_size {binary_size!r:.20} runs past the body")
            raw, at = body[at:at + binary_size], at + binary_size
        tensors.append(tensor(given.name, given.datatype, given.shape, given.data, raw))
    if at != len(body):
        raise BadRequest(f"{len(body) - at} bytes after the inputs' binary data belong to no input")
    return request, tensors


def answer(model: str, request: InferRequest, outputs: list[Tensor]) -> Response:
    """Outputs as JSON data, or as binary data after the JSON header where the request asked for it."""
    binary_default = bool((request.parameters or {}).get("binary_data_output", False))
    asked = {o.name: bool((o.parameters or {}).get("binary_data", binary_default)) for o in request.outputs or []}
    described, chunks = [], []
    for t in outputs:
        shape = list(t.array.shape)
        if asked.get(t.name, binary_default):
            chunk = serialize(t.array, t.datatype)
            chunks.append(chunk)
            described.append(ResponseOutput(name=t.name, shape=shape, datatype=t.datatype,
                                            parameters={"binary_data_size": len(chunk)}))
        else:
            described.append(ResponseOutput(name=t.name, shape=shape, datatype=t.datatype,
                                            data=json_data(t.array, t.datatype)))
    header = InferResponse(model_name=model, model_version="1", id=request.id, outputs=described)
    text = json.dumps(header.model_dump(exclude_none=True)).encode()
    if not chunks:
        return Response(text, media_type="application/json")
    return Response(text + b"".join(chunks), media_type="application/octet-stream",
                    headers={"Inference-Header-Content-Length": str(len(text))})


def health(live: bool, ready: bool) -> APIRouter:
    """The server-wide routes: liveness, readiness (`ready()` is awaited per call), server metadata."""
    router = APIRouter(prefix=PREFIX, include_in_schema=False)  # described by its own metadata routes

    @router.get("/health/live")
    async def server_live():
        return {"live": live}

    @router.get("/health/ready")
    async def server_ready():
        ok = await ready()
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    @router.get("")
    async def server_meta():
        return server_metadata().model_dump()

    return router


def server_router(ready, forward) -> APIRouter:
    """The catalog app's `/v2`: server-wide routes, and model routes handed to `forward(name, request)`."""
    router = health(True, ready)

    @router.api_route("/models/{name}{rest:path}", methods=["GET", "POST"])
    async def model_route(name: str, rest: str, request: Request) -> Response:
        return await forward(name, request)

    return router


def model_router(v2: V2Model) -> APIRouter:
    """One model's v2 routes (and the server-wide ones, as this model sees them) for its replica's app."""

    async def model_ready():
        return v2.ready()

    router = health(True, model_ready)

    async def metadata(model: str, version: str | None = None):
        try:
            v2.check(model, version)
            return v2.metadata().model_dump(exclude_none=True)
        except Exception as exc:
            return v2_error(exc)

    async def ready(model: str, version: str | None = None):
        try:
            v2.check(model, version)
        except Exception as exc:
            return v2_error(exc)
        return JSONResponse({"name": model, "ready": v2.ready()}, status_code=200 if v2.ready() else 503)

    async def infer(request: Request, model: str, version: str | None = None):
        try:
            v2.check(model, version)
            parsed, inputs = parse(await request.body(), request.headers.get(HEADER_LENGTH),
                                   request.headers.get("content-encoding"))
            outputs = await v2.infer(inputs, [o.name for o in parsed.outputs or []], parsed.parameters, "v2")
            return answer(model, parsed, outputs)
        except Exception as exc:
            return v2_error(exc)

    for path in MODEL_PATHS:
        router.add_api_route(path, metadata, methods=["GET"])
        router.add_api_route(path + "/ready", ready, methods=["GET"])
        router.add_api_route(path + "/infer", infer, methods=["POST"])
    return router


async def call_asgi(app, root_path: str, method: str, path: str, headers: list[tuple[bytes, bytes]],
                    body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Run one buffered HTTP request through an ASGI app in this process: how a replica answers a request the
    catalog app forwards (same routes, limits and errors as when the proxy sends it directly)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": root_path + path, "raw_path": (root_path + path).encode(), "root_path": root_path,
             "query_string": b"", "headers": headers, "client": None, "server": None}
    sent = False
    status, out_headers, chunks = 500, [], []

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message):
        nonlocal status, out_headers
        if message["type"] == "http.response.start":
            status, out_headers = message["status"], list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, out_headers, b"".join(chunks)
