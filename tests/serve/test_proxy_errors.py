"""The proxy-side middleware in process: what Ray's proxy answers in plain text (or does not answer at all, when a
replica dies) reaches clients as JSON errors; JSON answers of replicas and Ray's own /-/ routes pass untouched."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from serve.protocols.proxy_errors import ProxyErrors


def plain(status: int, text: bytes, headers=()):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain"), *headers]})
        await send({"type": "http.response.body", "body": text[:5], "more_body": True})
        await send({"type": "http.response.body", "body": text[5:]})
    return app


async def returns_without_answering(scope, receive, send):
    pass  # what Ray's proxy does when the replica it called died


async def raises(scope, receive, send):
    raise RuntimeError("actor died")


def json_500(scope, receive, send):
    async def run():
        await send({"type": "http.response.start", "status": 500, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"error": "internal_error", "detail": "x"}'})
    return run()


def call(app, path: str = "/yolo/query_once") -> httpx.Response:
    async def run():
        transport = httpx.ASGITransport(app=ProxyErrors(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as client:
            return await client.post(path, json={"data": "x"})
    return asyncio.run(run())


@pytest.mark.parametrize("app, status, error", [
    (returns_without_answering, 503, "model_unavailable"),
    (raises, 503, "model_unavailable"),
    (plain(500, b"Internal Server Error"), 503, "model_unavailable"),
    (plain(503, b"Request dropped due to backpressure (num_queued_requests=112)"), 503, "overloaded"),
    (plain(504, b"Request timed out after 30 s"), 504, "timeout"),
    (plain(408, b"Client disconnected"), 408, "request_timeout"),
])
def test_plain_text_and_missing_answers_become_json_errors(app, status, error):
    response = call(app)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == error and response.json()["detail"]
    if status == 503:
        assert int(response.headers["retry-after"]) >= 1


def test_the_proxys_own_retry_after_is_kept():
    response = call(plain(503, b"Request dropped due to backpressure", [(b"retry-after", b"7")]))
    assert response.json()["error"] == "overloaded" and response.headers["retry-after"] == "7"


def test_json_errors_of_replicas_and_rays_own_routes_pass_untouched():
    assert call(json_500).json() == {"error": "internal_error", "detail": "x"}
    health = call(plain(503, b"This node is being drained."), path="/-/healthz")
    assert health.status_code == 503 and health.text == "This node is being drained."
    ok = call(plain(200, b"hello world"))
    assert ok.status_code == 200 and ok.text == "hello world"
