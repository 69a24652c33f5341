"""socket.io in process: the real python-socketio client over WebSocket against the model's real ASGI app under
uvicorn (no Ray), with the fixture families: answers on the catalog's event, typed `error` events, the newest
frame winning over a backlog. The same against the real models through Ray Serve's proxy: test_server.py."""

from __future__ import annotations

import asyncio

import pytest
import socketio

from tests.helpers.inprocess import fixture_entry, image_uri, loaded_runner, model_app, uvicorn_serving

NAMESPACE = "/query"


async def stream(runner, frames: list, one_at_a_time: bool = True, settle_s: float = 0.2) -> tuple[list, list]:
    """Connect as the README says (WebSocket, the model's socket.io path) and emit the frames: one at a time, each
    after the previous one's answer or error, or all at once; then collect what arrives until `settle_s` passes
    in silence (so an extra answer would be seen)."""
    answers, errors = [], []
    arrived = asyncio.Event()

    def on(events: list):
        def record(body):
            events.append(body)
            arrived.set()
        return record

    async with uvicorn_serving(model_app(runner)) as url:
        client = socketio.AsyncClient(reconnection=False)
        client.on("update_response", on(answers), namespace=NAMESPACE)
        client.on("error", on(errors), namespace=NAMESPACE)
        await client.connect(url, namespaces=[NAMESPACE], transports=["websocket"],
                             socketio_path=f"/{runner.entry.name}/socket.io", wait_timeout=10)
        try:
            for frame in frames:
                arrived.clear()
                await client.emit("update_request", frame, namespace=NAMESPACE)
                if one_at_a_time:
                    await asyncio.wait_for(arrived.wait(), 30)
            while True:
                arrived.clear()
                try:
                    await asyncio.wait_for(arrived.wait(), settle_s if one_at_a_time else 1.0)
                except asyncio.TimeoutError:
                    break
        finally:
            await client.disconnect()
    return answers, errors


@pytest.fixture
def echo(fixture_families):
    return loaded_runner(fixture_entry("echo", "test-echo"))


def test_a_frame_is_answered_on_the_catalogs_event(echo):
    answers, errors = asyncio.run(stream(echo, [{"data": image_uri(30, 20, (1, 2, 3)), "id": "f1"}]))
    assert errors == [] and len(answers) == 1
    answer = answers[0]
    assert answer["id"] == "f1" and answer["model"] == "echo" and answer["dropped_frames"] == 0
    assert answer["result"] == {"width": 30, "height": 20, "mean_rgb": [1.0, 2.0, 3.0]}
    assert echo.metrics.requests_seen == [("socketio", 200)]


def test_a_bare_data_string_is_a_frame_too(echo):
    answers, errors = asyncio.run(stream(echo, [image_uri(12, 12)]))
    assert errors == [] and [a["result"]["width"] for a in answers] == [12]


@pytest.mark.parametrize("frame, code", [
    ({"id": 3}, "invalid_payload"),
    ("@@@", "invalid_payload"),
    ({"data": 5}, "invalid_payload"),
    ({"data": "data:image/png;base64,aGVsbG8gd29ybGQ="}, "invalid_image"),
    ({"data": image_uri(), "render": True}, None),  # echo can draw: answered
])
def test_a_bad_frame_gets_a_typed_error_event_and_the_stream_goes_on(echo, frame, code):
    answers, errors = asyncio.run(stream(echo, [frame, {"data": image_uri(), "id": "next"}]))
    if code is None:
        assert errors == [] and answers[0]["image"].startswith("data:image/jpeg;base64,")
    else:
        assert [set(e) for e in errors] == [{"error", "detail"}] and errors[0]["error"] == code, errors
        assert [a["id"] for a in answers] == ["next"]
    assert sorted(s for _, s in echo.metrics.requests_seen) == sorted([200, 200] if code is None else [200, 422])


@pytest.mark.parametrize("implementation, render, code", [("test-fails-to-load", False, "model_unavailable"),
                                                          ("test-raises", False, "internal_error"),
                                                          ("test-cannot-draw", True, "invalid_payload")])
def test_model_side_failures_are_error_events(fixture_families, implementation, render, code):
    runner = loaded_runner(fixture_entry("model", implementation))
    answers, errors = asyncio.run(stream(runner, [{"data": image_uri(), "render": render}]))
    assert answers == [] and [e["error"] for e in errors] == [code]
    assert "Traceback" not in errors[0]["detail"] and "internal detail" not in errors[0]["detail"]


def test_a_fast_stream_drops_stale_frames_and_the_newest_wins(fixture_families):
    runner = loaded_runner(fixture_entry("slow", "test-slow", options={"delay_s": 0.3}))
    frames = [{"data": image_uri(), "id": i} for i in range(12)]
    answers, errors = asyncio.run(stream(runner, frames, one_at_a_time=False))
    ids = [a["id"] for a in answers]
    print(f"12 frames at once, model 0.3 s per batch: answered {ids}, dropped {answers[-1]['dropped_frames']}")
    assert errors == []
    assert ids == sorted(ids) and ids[0] == 0 and ids[-1] == 11  # in order; the newest is always answered
    assert len(ids) < 12 and answers[-1]["dropped_frames"] == 12 - len(ids) == runner.metrics.dropped_seen
    assert all(size == 1 for size in runner.model.batch_sizes)  # one waiting frame per connection: no backlog
