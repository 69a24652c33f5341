"""The proxy's socket.io frame gate with the real python-socketio server and client, in process (uvicorn on a
free port): a client emitting far faster than the handler answers reaches the handler with only the frames that
were newest when it became free, and each answer counts the frames dropped on the way."""

from __future__ import annotations

import asyncio
import socket

import socketio
import uvicorn

from serve.protocols.proxy_frames import FrameGate, with_proxy_drops
from serve.protocols.socket import DROPPED_FRAMES_FIELD


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def serve_slow_model(seen: list[int], seconds_per_frame: float):
    sio = socketio.AsyncServer(async_mode="asgi")

    async def on_frame(sid, body):
        seen.append(body["id"])
        await asyncio.sleep(seconds_per_frame)
        await sio.emit("answer", {"id": body["id"], DROPPED_FRAMES_FIELD: 0}, to=sid, namespace="/query")

    sio.on("frame", on_frame, namespace="/query")
    port = free_port()
    app = FrameGate(socketio.ASGIApp(sio, socketio_path="/m/socket.io"))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    return server, task, f"http://127.0.0.1:{port}"


def stream_through_gate(seconds_per_frame: float, frames: int, gap_s: float, settle_s: float):
    """Emit `frames` frames `gap_s` apart through the gate to a handler taking `seconds_per_frame`; return the
    frame ids the handler saw and the answers the client got."""
    seen, answers = [], []

    async def run():
        server, task, url = await serve_slow_model(seen, seconds_per_frame)
        client = socketio.AsyncClient(reconnection=False)
        client.on("answer", answers.append, namespace="/query")
        await client.connect(url, namespaces=["/query"], transports=["websocket"], socketio_path="/m/socket.io")
        for i in range(frames):
            await client.emit("frame", {"id": i}, namespace="/query")
            await asyncio.sleep(gap_s)
        await asyncio.sleep(settle_s)
        await client.disconnect()
        server.should_exit = True
        await task

    asyncio.run(run())
    return seen, answers


def test_a_client_faster_than_the_model_gets_answers_for_its_newest_frames():
    seen, answers = stream_through_gate(0.1, 60, 0.005, 0.5)
    assert seen[0] == 0 and seen[-1] == 59, seen  # the first frame, then always the newest
    assert len(seen) < 15, seen  # ~0.3 s of frames took ~3 model turns, not 60
    assert seen == sorted(seen) and [a["id"] for a in answers] == seen
    assert answers[-1][DROPPED_FRAMES_FIELD] == 60 - len(seen)


def test_a_client_slower_than_the_model_loses_nothing():
    seen, answers = stream_through_gate(0.01, 10, 0.1, 0.2)
    assert seen == list(range(10)) and [a[DROPPED_FRAMES_FIELD] for a in answers] == [0] * 10


def test_drops_are_added_to_the_replicas_count_found_from_the_end():
    answer = {"type": "websocket.send", "text": '42/query,["r",{"image":"' + "A" * 1000 + f'","{DROPPED_FRAMES_FIELD}":7}}]'}
    assert with_proxy_drops(answer, 5)["text"].endswith(f'"{DROPPED_FRAMES_FIELD}":12}}]')
    assert with_proxy_drops(answer, 0) is answer
    other = {"type": "websocket.send", "text": '42/query,["error",{"error":"x","detail":"y"}]'}
    assert with_proxy_drops(other, 3) is other
