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
from socketio.exceptions import ConnectionRefusedError as Refused

from serve.catalog import Entry
from serve.errors import InvalidPayload, ServeError, field_problems
from serve.protocols.http import as_serve_error
from serve.protocols.types import QueryRequest

ERROR_EVENT = "error"


@dataclass
class FrameSlot:
    """The one frame waiting for a connection, and whether its drain loop runs."""

    pending: object | None = None
    busy: bool = False
    dropped: int = 0


class NewestFrameNamespace(socketio.AsyncNamespace):
    def __init__(self, entry: Entry, runner, guard=None):
        assert entry.query.socket is not None
        super().__init__(entry.query.socket.namespace)
        self.entry, self.runner, self.guard = entry, runner, guard
        self.answer_event = entry.query.socket.event
        self.slots: dict[str, FrameSlot] = {}
        # python-socketio dispatches "on_<event>" methods; the catalog names the request event.
        setattr(self, f"on_{entry.query.socket.emit}", self._on_frame)

    async def on_connect(self, sid, environ, auth=None):
        if self.guard:  # the token as an Authorization header on the handshake, or socket.io's auth {"token"}
            token = auth.get("token") if isinstance(auth, dict) else None
            try:
                self.guard(f"Bearer {token}" if isinstance(token, str) else environ.get("HTTP_AUTHORIZATION"))
            except ServeError as error:
                raise Refused(error.body().model_dump()) from None
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
        body["dropped_frames"] = slot.dropped
        await self.emit(self.answer_event, body, to=sid)


def socket_server(entry: Entry, runner, guard=None) -> socketio.AsyncServer:
    """An AsyncServer for one model. WebSocket is the transport that works with several replicas: polling
    keeps session state in one replica's memory and the Serve proxy does not route a session's polls back to
    it (see the README)."""
    sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*",
                               max_http_buffer_size=entry.serving.limits.max_body_bytes)
    sio.register_namespace(NewestFrameNamespace(entry, runner, guard))
    return sio
