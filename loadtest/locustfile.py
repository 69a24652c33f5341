"""Locust load test: HTTP and socket.io users against a running server.

    .venv/bin/locust -f loadtest/locustfile.py --host http://127.0.0.1:8000 --headless -u 16 -r 4 -t 60s
    RUNWAY_MODEL=object-detection RUNWAY_IMAGE=path/to/photo.jpg ... (defaults: yolo, shared/images/dog.jpg)

Socket.io round trips are timed here (emit -> answer): locust's own socket.io user records 0 ms for emits.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from pathlib import Path

import socketio
from locust import HttpUser, User, between, events, task

MODEL = os.environ.get("RUNWAY_MODEL", "yolo")
IMAGE = Path(os.environ.get("RUNWAY_IMAGE", Path(os.environ.get("RUNWAY_SHARED", Path(__file__).parents[2] / "shared"))
                            / "images/dog.jpg"))
DATA = "data:image/jpeg;base64," + base64.b64encode(IMAGE.read_bytes()).decode()


class HttpQueryUser(HttpUser):
    wait_time = between(0, 0.05)

    @task
    def query_once(self) -> None:
        with self.client.post(f"/{MODEL}/query_once", json={"data": DATA}, name=f"POST /{MODEL}/query_once",
                              catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")


class SocketIOFrameUser(User):
    """Sends one frame, waits for its answer (or an error), repeats: a camera at the model's pace."""

    wait_time = between(0, 0.05)

    def on_start(self) -> None:
        self.answered = threading.Event()
        self.outcome: tuple[str, object] | None = None
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("update_response", lambda body: self._done("ok", body), namespace="/query")
        self.sio.on("error", lambda body: self._done("error", body), namespace="/query")
        self.sio.connect(self.host, namespaces=["/query"], transports=["websocket"],
                         socketio_path=f"/{MODEL}/socket.io")
        self.frame = 0

    def _done(self, kind: str, body) -> None:
        self.outcome = (kind, body)
        self.answered.set()

    @task
    def frame_round_trip(self) -> None:
        self.frame += 1
        self.answered.clear()
        start = time.perf_counter()
        self.sio.emit("update_request", {"data": DATA, "id": self.frame}, namespace="/query")
        ok = self.answered.wait(30)
        elapsed_ms = (time.perf_counter() - start) * 1e3
        error = None
        if not ok:
            error = TimeoutError("no answer in 30 s")
        elif self.outcome[0] == "error":
            error = RuntimeError(str(self.outcome[1]))
        events.request.fire(request_type="socketio", name=f"{MODEL} update_request", response_time=elapsed_ms,
                            response_length=0, exception=error, context={})

    def on_stop(self) -> None:
        self.sio.disconnect()
