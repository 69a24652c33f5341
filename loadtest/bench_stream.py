"""Video streams over socket.io against the raw model, in one run: N python-socketio clients each send dog.jpg at
a fixed frame rate for a while; every frame carries its sequence number as `id`, so each answer tells which frame
it describes and how old that frame was when the answer arrived (now minus the frame's send time).

    .venv/bin/python -m loadtest.bench_stream --model yolo [--fps 30] [--seconds 20] [--streams 1,2,8]

Prints, per stream count: frames sent / answered / dropped, answers per second (all streams) against the raw
model's rate (1 / its batch-1 latency, in process), the answered frames' age p50 / p99 in ms and in model
latencies, and the machine's CPU busy; writes the figures as JSON (--json).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import copy
import json
import os
import tempfile
import time
from pathlib import Path

import socketio

from loadtest.bench import cpu_busy_s, pct, raw_figures
from loadtest.servers import REPO, LocalServer, add_front_option, use_shared_folder
from serve.catalog import load_catalog

PORT, METRICS_PORT = 18650, 18651


async def one_stream(url: str, entry, data: str, fps: float, seconds: float, ages: list[float]) -> tuple[int, int]:
    """Send a frame every 1/fps s for `seconds`; return (sent, answered). Ages of answered frames go to `ages`."""
    socket = entry.query.socket
    sent_at: dict[int, float] = {}
    answered = 0

    def on_answer(body: dict) -> None:
        nonlocal answered
        answered += 1
        ages.append(time.monotonic() - sent_at[int(body["id"])])

    client = socketio.AsyncClient(reconnection=False)
    client.on(socket.event, on_answer, namespace=socket.namespace)
    await client.connect(url, namespaces=[socket.namespace], transports=["websocket"],
                         socketio_path=f"/{entry.name}/socket.io", wait_timeout=30)
    started, seq = time.monotonic(), 0
    while (now := time.monotonic()) < started + seconds:
        sent_at[seq] = now
        await client.emit(socket.emit, {"data": data, "id": seq}, namespace=socket.namespace)
        seq += 1
        await asyncio.sleep(max(0.0, started + seq / fps - time.monotonic()))
    await asyncio.sleep(1.0)  # the last frame's answer
    await client.disconnect()
    return seq, answered


def run_streams(url: str, entry, data: str, streams: int, fps: float, seconds: float, model_s: float) -> dict:
    ages: list[float] = []

    async def run():
        return await asyncio.gather(*(one_stream(url, entry, data, fps, seconds, ages) for _ in range(streams)))

    cpu0, t0 = cpu_busy_s(), time.monotonic()
    counts = asyncio.run(run())
    cpu_busy = (cpu_busy_s() - cpu0) / (time.monotonic() - t0) / os.cpu_count()
    sent, answered = sum(s for s, _ in counts), sum(a for _, a in counts)
    return {"streams": streams, "fps": fps, "seconds": seconds, "sent": sent, "answered": answered,
            "dropped": sent - answered, "answers_per_s": answered / seconds,
            "answers_per_s_vs_raw": answered / seconds * model_s,
            "age_p50_ms": pct(ages, 50) * 1e3, "age_p99_ms": pct(ages, 99) * 1e3,
            "age_p99_model_latencies": pct(ages, 99) / model_s, "cpu_busy": cpu_busy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="yolo")
    parser.add_argument("--fps", type=float, default=30)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--streams", default="1,2,8")
    parser.add_argument("--image", type=Path, default=None, help="default: shared/images/dog.jpg")
    parser.add_argument("--json", type=Path, default=REPO / "build" / "stream.json")
    add_front_option(parser)
    args = parser.parse_args()
    image = args.image or use_shared_folder() / "images" / "dog.jpg"
    data = "data:image/jpeg;base64," + base64.b64encode(image.read_bytes()).decode()
    model_s = raw_figures(REPO / "models.json", args.model, data, reps=20)["batch1_ms"] / 1e3
    print(f"{args.model} raw batch-1 latency {model_s * 1e3:.1f} ms: the raw model sustains {1 / model_s:.1f} frames/s")
    entries = [copy.deepcopy(e) for e in json.loads((REPO / "models.json").read_text()) if e["name"] == args.model]
    entry = load_catalog(REPO / "models.json").get(args.model)
    results = []
    with tempfile.TemporaryDirectory() as workdir, \
            LocalServer(entries, Path(workdir), port=PORT, metrics_port=METRICS_PORT, front=args.front) as server:
        for streams in [int(n) for n in args.streams.split(",")]:
            figures = run_streams(server.url, entry, data, streams, args.fps, args.seconds, model_s)
            results.append(figures)
            print(f"{streams} stream(s) at {args.fps:g} fps for {args.seconds:g} s: sent {figures['sent']}, answered "
                  f"{figures['answered']}, dropped {figures['dropped']}; {figures['answers_per_s']:.1f} answers/s = "
                  f"{figures['answers_per_s_vs_raw']:.2f}x the raw model's rate; frame age p50 "
                  f"{figures['age_p50_ms']:.0f} ms, p99 {figures['age_p99_ms']:.0f} ms "
                  f"({figures['age_p99_model_latencies']:.1f} model latencies); machine busy "
                  f"{figures['cpu_busy'] * 100:.0f} %")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"model": args.model, "front": args.front, "raw_latency_ms": model_s * 1e3,
                                     "runs": results}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
