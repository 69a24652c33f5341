"""JSON for the answers Ray Serve's proxy gives itself. When a replica dies mid-request the proxy returns without
answering and uvicorn sends a plain-text "500 Internal Server Error"; backpressure, timeouts and disconnects are
plain-text 503/504/408. Clients of this stack get every error as `{"error", "detail"}` JSON with a Retry-After
where retrying helps, so this ASGI middleware runs inside the proxy (see serve/protocols/proxy.py).
Our replicas answer errors in JSON already; those pass through untouched."""

from __future__ import annotations

import json
import logging

from serve.errors import ModelUnavailable, Overloaded, ServeError

log = logging.getLogger(__name__)


class ProxyTimeout(ServeError):
    status, code = 504, "timeout"


class ClientGone(ServeError):
    status, code = 408, "request_timeout"


def proxy_error(status: int, text: str) -> ServeError:
    """The error a plain-text proxy answer stands for."""
    if status == 503:
        return Overloaded(f"the server is at capacity ({text.strip()[:200]}); retry later")
    if status == 504:
        return ProxyTimeout(f"no answer within the server's request timeout ({text.strip()[:200]})")
    if status == 408:
        return ClientGone(text.strip()[:200] or "the request was not completed in time")
    return ModelUnavailable("the model's replica stopped while answering (it is being restarted); retry")


def error_messages(error: ServeError, headers: dict[str, str] | None = None) -> list[dict]:
    body = json.dumps(error.body().model_dump()).encode()
    all_headers = {**error.headers, **(headers or {}), "content-type": "application/json",
                   "content-length": str(len(body))}
    return [{"type": "http.response.start", "status": error.status,
             "headers": [(k.lower().encode(), v.encode()) for k, v in all_headers.items()]},
            {"type": "http.response.body", "body": body}]


class ProxyErrors:
    """Rewrites non-JSON 408/5xx answers (and the missing answer of a dead replica) into JSON errors."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith("/-/"):  # /-/healthz and /-/routes are Ray's own
            return await self.app(scope, receive, send)
        started, held = False, None  # held: (status, retry-after, body so far) of an answer being rewritten

        async def rewriting_send(message):
            nonlocal started, held
            if message["type"] == "http.response.start":
                started = True
                headers = {k.lower(): v for k, v in message.get("headers", [])}
                if (message["status"] == 408 or message["status"] >= 500) and \
                        not headers.get(b"content-type", b"").startswith(b"application/json"):
                    held = (message["status"], headers.get(b"retry-after"), b"")
                    return
            elif message["type"] == "http.response.body" and held is not None:
                status, retry_after, body = held
                held = (status, retry_after, body + message.get("body", b""))
                if message.get("more_body", False):
                    return
                extra = {"Retry-After": retry_after.decode()} if retry_after else None
                for rewritten in error_messages(proxy_error(status, held[2].decode(errors="replace")), extra):
                    await send(rewritten)
                return
            await send(message)

        try:
            await self.app(scope, receive, rewriting_send)
        except Exception:
            if started:
                raise
            log.warning("proxy failed before answering %s %s", scope.get("method"), scope.get("path"), exc_info=True)
        if not started:
            for message in error_messages(proxy_error(500, "")):
                await send(message)

