"""Request bodies read whole, within limits, before the app sees them. An ASGI middleware, so every HTTP route of
a replica (native, and any other protocol mounted beside it) gets the same rules:
- a `Content-Length` over the limit is refused at once with 413, before a byte of the body is read;
- a body streamed past the limit (chunked, or a lying Content-Length) is cut at the limit with 413;
- a body that has not fully arrived within the deadline is answered 408: a client trickling its body (or sending
  headers and going silent) holds a replica slot for that long at most, not forever.
Errors are the one JSON shape of serve.errors."""

from __future__ import annotations

import asyncio
import json

from serve.errors import BodyTimeout, PayloadTooLarge, ServeError

BODY_METHODS = {"POST", "PUT", "PATCH"}


class BodyLimits:
    """`gate`, when given, is called with the request's scope before the body is read and may raise a ServeError
    (e.g. overload): a request refused anyway costs no body transfer.

    `drain_refused`: read (and drop) the body of a request the gate refused before answering. Needed when the
    client's connection reaches this app directly (HAProxy's direct ingress): a server that answers and closes
    with unread bytes in its socket makes the kernel reset the connection, and the client sees a reset instead of
    the 503. Behind Ray's Python proxy the body is already in the proxy and skipping it saves the transfer."""

    def __init__(self, app, max_bytes: int, timeout_s: float, gate=None, error_body=None, drain_refused=False):
        self.app, self.max_bytes, self.timeout_s, self.gate = app, max_bytes, timeout_s, gate
        self.drain_refused = drain_refused
        #: (scope, error) -> the JSON body for this route's protocol, or None for the project's shape
        self.error_body = error_body or (lambda scope, error: None)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") not in BODY_METHODS:
            return await self.app(scope, receive, send)
        try:
            declared = content_length(scope)
            if declared is not None and declared > self.max_bytes:
                raise PayloadTooLarge(f"the body is {declared} bytes; the limit is {self.max_bytes}")
            if self.gate:
                try:
                    self.gate(scope)
                except ServeError:
                    if self.drain_refused:
                        await asyncio.wait_for(self.read(receive), self.timeout_s)
                    raise
            body = await asyncio.wait_for(self.read(receive), self.timeout_s)
        except asyncio.TimeoutError:
            error = BodyTimeout(f"the body did not arrive within {self.timeout_s:g} s")
            return await answer(send, error, self.error_body(scope, error))
        except ServeError as error:
            return await answer(send, error, self.error_body(scope, error))
        return await self.app(scope, replay(body, receive), send)

    async def read(self, receive) -> bytes:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ServeError("client disconnected")  # the answer goes nowhere; end the request here
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise PayloadTooLarge(f"the body is over the limit of {self.max_bytes} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def content_length(scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def replay(body: bytes, receive):
    """A `receive` that gives the buffered body once, then waits on the real one (for http.disconnect)."""
    sent = False

    async def replayed():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def answer(send, error: ServeError, shaped: dict | None = None) -> None:
    body = json.dumps(shaped if shaped is not None else error.body().model_dump()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
