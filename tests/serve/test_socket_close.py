"""engine.io's close message reaches Ray's proxy with the ASGI default code filled in (the proxy reads it)."""

from __future__ import annotations

import asyncio

from serve.protocols.socket import CloseCode


def test_a_close_without_code_gets_the_asgi_default():
    sent = []

    async def engineio_like(scope, receive, send):
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close"})
        await send({"type": "websocket.close", "code": 1011})

    async def record(message):
        sent.append(message)

    asyncio.run(CloseCode(engineio_like)({"type": "websocket", "path": "/"}, None, record))
    assert sent == [{"type": "websocket.accept"}, {"type": "websocket.close", "code": 1000},
                    {"type": "websocket.close", "code": 1011}]
