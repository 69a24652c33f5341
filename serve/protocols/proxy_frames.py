"""Newest frame wins, already in Ray's proxy. The replica's namespace keeps one waiting frame per socket.io
connection, but every frame a client sends first crosses the proxy and Ray's actor calls and is parsed in the
replica, so a client streaming far faster than the model answers costs CPU that the other clients' frames needed
(measured: a flood of ~1,700 frames/s took a polite stream beside it from 22 to 3 answers/s). This gate sits in the
proxy on each socket.io WebSocket: while a frame is with the replica and not yet answered, newer frames wait at
the proxy, each replacing the one before (counted), and only the newest goes on once the answer comes back.

Frames are socket.io EVENT packets in engine.io MESSAGE packets: text beginning with `42`. Anything else (the
namespace handshake, pings, binary events and their attachments) passes at once. An answer is any event the
server sends; a frame left unanswered for ANSWER_TIMEOUT_S (an event the model does not handle) stops holding the
gate."""

from __future__ import annotations

import asyncio
import time

from serve.protocols.socket import DROPPED_FRAMES_FIELD, SOCKET_PATH

EVENT = "42"
ANSWER_TIMEOUT_S = 10.0


def is_event(message: dict) -> bool:
    text = message.get("text")
    return text is not None and text.startswith(EVENT)


def with_proxy_drops(message: dict, dropped: int) -> dict:
    """The answer with the frames this gate dropped added to its `dropped_frames` (which the namespace writes last,
    so it is found from the end without parsing a body that may hold a rendered image)."""
    text, key = message["text"], f'"{DROPPED_FRAMES_FIELD}":'
    at = text.rfind(key, max(0, len(text) - 64))
    if not dropped or at < 0:
        return message
    start = at + len(key)
    end = start
    while end < len(text) and text[end].isdigit():
        end += 1
    if end == start:
        return message
    return {**message, "text": f"{text[:start]}{int(text[start:end]) + dropped}{text[end:]}"}


class Gate:
    """One connection's receive side: holds the newest frame while one is with the replica."""

    def __init__(self, receive, on_drop):
        self._receive, self._on_drop = receive, on_drop
        self._next: asyncio.Future | None = None  # the client's next message, asked for once and kept
        self._held: dict | None = None
        self._sent_at: float | None = None  # when the frame with the replica was forwarded
        self._answered = asyncio.Event()
        self.dropped = 0  # on this connection, added to the replica's count in each answer

    def answered(self) -> None:
        self._sent_at = None
        self._answered.set()

    def close(self) -> None:
        if self._next is not None:
            self._next.cancel()

    async def receive(self) -> dict:
        while True:
            if self._sent_at is not None and time.monotonic() - self._sent_at > ANSWER_TIMEOUT_S:
                self._sent_at = None
            if self._held is not None and self._sent_at is None:
                frame, self._held = self._held, None
                return self._forward(frame)
            if self._next is None:
                self._next = asyncio.ensure_future(self._receive())
            self._answered.clear()
            answered = asyncio.ensure_future(self._answered.wait())
            timeout = None if self._sent_at is None else ANSWER_TIMEOUT_S
            await asyncio.wait({self._next, answered}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            answered.cancel()
            if not self._next.done():
                continue
            message, self._next = self._next.result(), None
            if not is_event(message):
                return message
            if self._sent_at is None and self._held is None:
                return self._forward(message)
            if self._held is not None:
                self.dropped += 1
                self._on_drop()
            self._held = message

    def _forward(self, frame: dict) -> dict:
        self._sent_at = time.monotonic()
        return frame


class FrameGate:
    """ASGI middleware for Ray's proxy: a Gate on every socket.io WebSocket, other traffic untouched."""

    def __init__(self, app):
        self.app = app
        self._counter = None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket" or SOCKET_PATH not in scope["path"]:
            return await self.app(scope, receive, send)
        model = scope["path"].split(SOCKET_PATH, 1)[0].strip("/") or "/"
        gate = Gate(receive, lambda: self._count_drop(model))

        async def answering_send(message):
            if message["type"] == "websocket.send" and is_event(message):
                message = with_proxy_drops(message, gate.dropped)
                gate.answered()
            await send(message)

        try:
            await self.app(scope, gate.receive, answering_send)
        finally:
            gate.close()

    def _count_drop(self, model: str) -> None:
        if self._counter is None:
            from ray.util.metrics import Counter

            self._counter = Counter("runway_proxy_dropped_frames_total",
                                    "socket.io frames replaced by a newer one in the proxy, before the replica",
                                    tag_keys=("model",))
        self._counter.inc(1, tags={"model": model})
