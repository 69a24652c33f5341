"""socket.io: the catalog's namespace and events per model, newest frame wins.

A video client emits frames faster than a model may answer. Each connection holds at most one waiting frame:
a newer frame replaces it (the stale one is dropped and counted) and the answer always describes the freshest
frame available when the model became free, so no backlog can build up. Answers go out on the catalog's
`event`; bad frames get an `error` event with the same JSON shape as HTTP errors.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import socketio
from pydantic import ValidationError

from serve.catalog import Entry
from serve.errors import InvalidPayload, ServeError, WebSocketOnly, field_problems
from serve.protocols.body import answer
from serve.protocols.http import as_serve_error
from serve.protocols.types import QueryRequest

ERROR_EVENT = "error"
SOCKET_PATH = "/socket.io"  # under the model's route: /<model>/socket.io
DROPPED_FRAMES_FIELD = "dropped_frames"  # written last in an answer: the proxy's gate adds its own drops to it


@dataclass
class FrameSlot:
    """The one frame waiting for a connection, and whether its drain loop runs."""

    pending: object | None = None
    busy: bool = False
    dropped: int = 0


class NewestFrameNamespace(socketio.AsyncNamespace):
    def __init__(self, entry: Entry, runner):
        assert entry.query.socket is not None
        super().__init__(entry.query.socket.namespace)
        self.entry, self.runner = entry, runner
        self.answer_event = entry.query.socket.event
        self.slots: dict[str, FrameSlot] = {}
        # python-socketio dispatches "on_<event>" methods; the catalog names the request event.
        setattr(self, f"on_{entry.query.socket.emit}", self._on_frame)

    async def on_connect(self, sid, environ, auth=None):
        self.slots[sid] = FrameSlot()

    async def on_disconnect(self, sid, reason=None):
        self.slots.pop(sid, None)

    async def _on_frame(self, sid, payload):
        slot = self.slots.setdefault(sid, FrameSlot())
        if slot.pending is not None:
            slot.dropped += 1
            self.runner.metrics.dropped()
        slot.pending = payload
        if not slot.busy:
            slot.busy = True
            asyncio.get_running_loop().create_task(self._drain(sid, slot))

    async def _drain(self, sid: str, slot: FrameSlot) -> None:
        try:
            while slot.pending is not None and sid in self.slots:
                payload, slot.pending = slot.pending, None
                await self._answer(sid, payload, slot)
        finally:
            slot.busy = False

    async def _answer(self, sid: str, payload, slot: FrameSlot) -> None:
        try:
            request = QueryRequest.model_validate({"data": payload} if isinstance(payload, str) else payload)
        except ValidationError as exc:  # never reaches the runner, so it is counted here
            self.runner.metrics.request("socketio", InvalidPayload.status, 0.0)
            await self.emit(ERROR_EVENT, InvalidPayload("; ".join(field_problems(exc.errors(), empty="payload"))).body().model_dump(), to=sid)
            return
        try:
            response = await self.runner.query(request, transport="socketio")
        except Exception as exc:
            error: ServeError = as_serve_error(exc)
            await self.emit(ERROR_EVENT, error.body().model_dump(), to=sid)
            return
        body = response.model_dump(mode="json")
        body[DROPPED_FRAMES_FIELD] = slot.dropped  # last key (see proxy_frames.with_proxy_drops)
        await self.emit(self.answer_event, body, to=sid)


def websocket_only(entry: Entry) -> bool:
    """WebSocket is the only transport that works with several replicas: a long-polling session lives in the
    memory of the replica that opened it, and the Serve proxy spreads the session's later polls over all
    replicas (no affinity). So a model that may run more than one replica refuses polling outright."""
    return entry.serving is not None and entry.serving.autoscaling.max_replicas > 1


def socket_server(entry: Entry, runner) -> socketio.AsyncServer:
    """An AsyncServer for one model, WebSocket-only where the model may run several replicas."""
    transports = ["websocket"] if websocket_only(entry) else ["polling", "websocket"]
    sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*", transports=transports,
                               max_http_buffer_size=entry.serving.limits.max_body_bytes)
    sio.register_namespace(NewestFrameNamespace(entry, runner))
    return sio


class RefusePolling:
    """In front of engine.io on a WebSocket-only model: every plain HTTP request (a polling handshake or poll)
    gets 400 `websocket_only` as JSON, which engine.io's own refusal ("Invalid transport", text) is not."""

    def __init__(self, app, entry: Entry):
        self.app, self.entry = app, entry

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        await answer(send, WebSocketOnly(
            f"{self.entry.name} may run several replicas (autoscaling.max_replicas "
            f"{self.entry.serving.autoscaling.max_replicas}), so its socket.io accepts the WebSocket transport "
            f"only: connect with transports=['websocket']"))


def socket_app(entry: Entry, runner):
    """The model's socket.io ASGI app (engine.io path checks left to PathDispatch)."""
    app = socketio.ASGIApp(socket_server(entry, runner), socketio_path=None)
    return RefusePolling(app, entry) if websocket_only(entry) else app
