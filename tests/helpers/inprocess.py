"""One model's real ASGI app (serve/protocols/asgi.py) served in the test's own process, without Ray: catalog
entries naming the fixture families, a loaded runner, the Serve proxy's route prefix, and uvicorn on a free port
for clients that need a real socket (socket.io over WebSocket, raw HTTP)."""

from __future__ import annotations

import asyncio
import base64
import io
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import httpx
import uvicorn
from PIL import Image

from serve.catalog import Entry, parse_catalog
from serve.metrics import ModelMetrics
from serve.model import StageTimings
from serve.protocols.asgi import model_asgi_app
from serve.runner import ModelRunner, build_model
from tests.helpers.paths import REPO


def fixture_entry(name: str, implementation: str, socket_io: bool = True, **serving: Any) -> Entry:
    """A catalog entry as models.json would hold it, validated by the real schema; `serving` keys override the
    serving section's (e.g. batching={...}, limits={...}). The implementation must be registered (the
    `fixture_families` fixture)."""
    query: dict[str, Any] = {"http": {"route": "query_once", "method": "post", "type": "JSON"},
                             "format": {"data": "data:image/jpeg;base64,"}}
    if socket_io:
        query["socket"] = {"namespace": "query", "emit": "update_request", "event": "update_response"}
    raw = {"containerId": name, "name": name, "port": 33999, "query": query, "inputs": ["Image"],
           "serving": {"implementation": implementation, **serving}}
    return parse_catalog([raw]).entries[0]


class CountingMetrics(ModelMetrics):
    """The runner's real metrics, also kept in lists a test can read (Ray's metrics agent is not running)."""

    def __init__(self, model: str):
        super().__init__(model)
        self.requests_seen: list[tuple[str, int]] = []
        self.batches_seen: list[int] = []
        self.stages_seen: list[StageTimings] = []
        self.dropped_seen = 0

    def request(self, transport: str, status: int, seconds: float) -> None:
        self.requests_seen.append((transport, status))
        super().request(transport, status, seconds)

    def batch(self, size: int, inference_s: float, waits: list[float], stages: StageTimings) -> None:
        self.batches_seen.append(size)
        self.stages_seen.append(stages)
        super().batch(size, inference_s, waits, stages)

    def dropped(self, count: int = 1) -> None:
        self.dropped_seen += count
        super().dropped(count)


def loaded_runner(entry: Entry) -> ModelRunner:
    """The runner a Serve replica builds, given the same builder (no weights: the fixture families need none)."""
    runner = ModelRunner(entry, partial(build_model, entry, REPO), metrics=CountingMetrics(entry.name))
    runner.load()
    return runner


def under_route_prefix(prefix: str, app):
    """What the Serve proxy does for an application at `route_prefix`: the path stays whole and `root_path`
    gains the prefix (ray/serve/_private/proxy.py, `set_root_path`). Other paths get 404, as from the proxy."""

    async def mounted(scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            path = scope.get("path", "")
            if path != prefix and not path.startswith(prefix + "/"):
                if scope["type"] == "http":
                    await send({"type": "http.response.start", "status": 404, "headers": []})
                    await send({"type": "http.response.body", "body": b""})
                return
            scope = {**scope, "root_path": scope.get("root_path", "") + prefix}
        return await app(scope, receive, send)

    return mounted


def model_app(runner: ModelRunner, **options: Any):
    """The model's ASGI app as the proxy reaches it: under /<name>; `options` go to `model_asgi_app`."""
    return under_route_prefix(f"/{runner.entry.name}", model_asgi_app(runner.entry, runner, **options))


def asgi_client(runner: ModelRunner) -> httpx.AsyncClient:
    """An httpx client calling the app directly (no socket, no server)."""
    # A family error is answered 500 by the app and re-raised for the server to log; the test reads the 500.
    transport = httpx.ASGITransport(app=model_app(runner), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://model.test")


@asynccontextmanager
async def uvicorn_serving(app) -> AsyncIterator[str]:
    """Serve `app` with uvicorn in this event loop on a free loopback port; yields the base URL."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_config=None, ws="websockets-sansio"))
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[listener]))
    try:
        while not server.started:
            if task.done():
                task.result()  # raises the reason it could not start
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        listener.close()


def image_uri(width: int = 64, height: int = 48, colour: tuple[int, int, int] = (200, 30, 40),
              fmt: str = "PNG") -> str:
    """A data URI of a plain image (PNG keeps the colour exact; the echo families answer its mean)."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, fmt)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buffer.getvalue()).decode()
