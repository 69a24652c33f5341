"""Raw model vs served (Ray Serve, this stack) vs the plain-uvicorn peer, in one run on this machine.

    .venv/bin/python -m loadtest.bench --model yolo [--requests 200] [--image PATH]

Prints per-image raw latency (batch 1 and the best batch), served and peer latency p50/p99 at concurrency 1
and 16, throughput, CPU per request, and the ratios served/raw and served/peer.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np
from PIL import Image

from loadtest.servers import REPO, LocalServer, PeerServer
from serve.catalog import load_catalog
from serve.codecs import decode_image
from serve.runner import build_model


def cpu_busy_s() -> float:
    """Seconds of CPU spent by the whole machine so far (all processes: client, proxy, replicas)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def raw_figures(catalog_path: Path, model_name: str, data: str, reps: int) -> dict:
    catalog = load_catalog(catalog_path)
    entry = catalog.get(model_name)
    model = build_model(entry, catalog.base_dir)
    model.load()
    image = decode_image(data, entry.serving.limits.max_bytes, entry.serving.limits.max_pixels)
    per_image = {}
    for batch in sorted({1, 2, 4, entry.serving.batching.max_batch_size}):
        model.infer([image] * batch)  # warm-up
        times = []
        for _ in range(max(3, reps // batch)):
            t0 = time.perf_counter()
            model.infer([image] * batch)
            times.append((time.perf_counter() - t0) / batch)
        per_image[batch] = statistics.median(times) * 1e3
    pipeline = []
    for _ in range(reps):
        t0 = time.perf_counter()
        model.infer([decode_image(data, entry.serving.limits.max_bytes, entry.serving.limits.max_pixels)])
        pipeline.append((time.perf_counter() - t0) * 1e3)
    best = min(per_image, key=per_image.get)
    return {"batch1_ms": per_image[1], "best_batch": best, "best_batch_ms_per_image": per_image[best],
            "per_image_ms": per_image, "decode_plus_infer_p50_ms": statistics.median(pipeline)}


async def load(url: str, body: bytes, concurrency: int, requests: int) -> dict:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    remaining = requests

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            t0 = time.perf_counter()
            async with session.post(url, data=body, headers={"content-type": "application/json"}) as response:
                await response.read()
                statuses[response.status] = statuses.get(response.status, 0) + 1
            latencies.append((time.perf_counter() - t0) * 1e3)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(3):  # warm-up
            async with session.post(url, data=body, headers={"content-type": "application/json"}) as r:
                await r.read()
        cpu0, t0 = cpu_busy_s(), time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed, cpu = time.perf_counter() - t0, cpu_busy_s() - cpu0
    return {"p50_ms": pct(latencies, 50), "p99_ms": pct(latencies, 99), "rps": len(latencies) / elapsed,
            "cpu_ms_per_request": cpu / len(latencies) * 1e3, "statuses": statuses}


def measure(url: str, body: bytes, requests: int) -> dict:
    return {c: asyncio.run(load(url, body, c, requests if c == 1 else requests * 2)) for c in (1, 16)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="yolo")
    parser.add_argument("--catalog", default=str(REPO / "models.json"))
    parser.add_argument("--image", default=None, help="default: shared/images/dog.jpg")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    shared = Path(os.environ.get("RUNWAY_SHARED", REPO.parent / "shared"))
    os.environ["RUNWAY_SHARED"] = str(shared.resolve())
    image_path = Path(args.image or shared / "images/dog.jpg")
    data = "data:image/jpeg;base64," + base64.b64encode(image_path.read_bytes()).decode()
    body = json.dumps({"data": data}).encode()
    w, h = Image.open(image_path).size
    print(f"# {args.model} on {image_path.name} ({w}x{h}), {os.cpu_count()} CPUs, {args.requests} requests at c=1")

    figures = {"raw": raw_figures(Path(args.catalog), args.model, data, reps=60)}
    entry = load_catalog(args.catalog).get(args.model)
    route = entry.http_path

    peer = PeerServer(Path(args.catalog), args.model).start()
    try:
        figures["peer"] = measure(peer.url + route, body, args.requests)
    finally:
        peer.stop()

    with tempfile.TemporaryDirectory() as workdir:
        catalog = json.loads(Path(args.catalog).read_text())
        server = LocalServer(catalog, Path(workdir), port=18100, metrics_port=18180, models=[args.model]).start()
        try:
            server.wait_loaded()
            figures["served"] = measure(server.url + route, body, args.requests)
        finally:
            server.stop()
    report(figures)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str))


def report(f: dict) -> None:
    raw = f["raw"]
    print(f"raw model: batch 1 {raw['batch1_ms']:.1f} ms/image; best batch {raw['best_batch']} "
          f"{raw['best_batch_ms_per_image']:.1f} ms/image; per batch size {json.dumps({k: round(v, 1) for k, v in raw['per_image_ms'].items()})}")
    print(f"raw pipeline (base64 decode + infer, in process): p50 {raw['decode_plus_infer_p50_ms']:.1f} ms")
    print(f"{'server':8} {'c':>3} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>7} {'CPU ms/req':>10}  statuses")
    for name in ("peer", "served"):
        for c, m in f[name].items():
            print(f"{name:8} {c:>3} {m['p50_ms']:8.1f} {m['p99_ms']:8.1f} {m['rps']:7.1f} "
                  f"{m['cpu_ms_per_request']:10.1f}  {m['statuses']}")
    s1, p1 = f["served"][1], f["peer"][1]
    s16, p16 = f["served"][16], f["peer"][16]
    print(f"served/raw p50 at c=1: {s1['p50_ms'] / raw['decode_plus_infer_p50_ms']:.2f}x "
          f"(+{s1['p50_ms'] - raw['decode_plus_infer_p50_ms']:.1f} ms over decode+infer)")
    print(f"served/peer p50 at c=1: {s1['p50_ms'] / p1['p50_ms']:.2f}x (+{s1['p50_ms'] - p1['p50_ms']:.1f} ms); "
          f"CPU/request served {s1['cpu_ms_per_request']:.1f} ms vs peer {p1['cpu_ms_per_request']:.1f} ms")
    print(f"served/peer throughput at c=16: {s16['rps'] / p16['rps']:.2f}x")


if __name__ == "__main__":
    main()
