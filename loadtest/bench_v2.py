"""The Open Inference Protocol vs the native route, same server, same run: one model served locally, the same JPEG
sent as the native base64 JSON (`POST /<model>/query_once`), as a binary BYTES tensor to the model's replica
(`/<model>/v2/models/<model>/infer`, one hop) and through the catalog app (`/v2/models/<model>/infer`, the spec's
address: one more hop), and over gRPC (tritonclient's asyncio client through Serve's gRPC proxy).

    .venv/bin/python -m loadtest.bench_v2 --model yolo [--requests 100]

Prints per-image latency p50/p99 at concurrency 1 and 16, throughput and CPU per request for each.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import tritonclient.grpc.aio as grpc_aio
import tritonclient.http as thttp

from loadtest.bench import cpu_busy_s, load, pct
from loadtest.servers import REPO, LocalServer, use_shared_folder


def v2_body(jpeg: bytes) -> tuple[bytes, dict]:
    """What tritonclient sends by default: the JSON header, then the image as binary BYTES data."""
    tensor = thttp.InferInput("image", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([jpeg], dtype=object))
    body, json_size = thttp.InferenceServerClient.generate_request_body([tensor])
    return body, {"Inference-Header-Content-Length": str(json_size), "content-type": "application/octet-stream"}


async def grpc_load(address: str, model: str, jpeg: bytes, concurrency: int, requests: int) -> dict:
    client = grpc_aio.InferenceServerClient(address)
    tensor = grpc_aio.InferInput("image", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([jpeg], dtype=object))
    latencies, failures, remaining = [], 0, requests

    async def one() -> None:
        await client.infer(model, [tensor], headers={"application": model})

    async def worker() -> None:
        nonlocal remaining, failures
        while remaining > 0:
            remaining -= 1
            t0 = time.perf_counter()
            try:
                await one()
            except Exception:
                failures += 1
            latencies.append((time.perf_counter() - t0) * 1e3)

    try:
        for _ in range(3):
            await one()
        cpu0, t0 = cpu_busy_s(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed, cpu = time.perf_counter() - t0, cpu_busy_s() - cpu0
    finally:
        await client.close()
    return {"p50_ms": pct(latencies, 50), "p99_ms": pct(latencies, 99), "rps": len(latencies) / elapsed,
            "cpu_ms_per_request": cpu / len(latencies) * 1e3, "statuses": {"ok": len(latencies) - failures,
                                                                          "failed": failures}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="yolo")
    parser.add_argument("--catalog", default=str(REPO / "models.json"))
    parser.add_argument("--image", default=None, help="default: shared/images/dog.jpg")
    parser.add_argument("--requests", type=int, default=100, help="at c=1; twice as many at c=16")
    parser.add_argument("--ports", default="18454,18455,19052", help="HTTP, metrics and gRPC ports")
    args = parser.parse_args()
    shared = use_shared_folder()
    jpeg = Path(args.image or shared / "images/dog.jpg").read_bytes()
    native = json.dumps({"data": "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()}).encode()
    body, headers = v2_body(jpeg)
    http_port, metrics_port, grpc_port = (int(p) for p in args.ports.split(","))
    m = args.model
    print(f"# {m}: {len(jpeg)} B JPEG; native body {len(native)} B, v2 binary body {len(body)} B; {os.cpu_count()} CPUs")
    figures: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as workdir:
        catalog = json.loads(Path(args.catalog).read_text())
        server = LocalServer(catalog, Path(workdir), port=http_port, metrics_port=metrics_port, models=[m],
                             grpc_port=grpc_port).start()
        try:
            server.wait_loaded()
            for c in (1, 16):
                n = args.requests if c == 1 else args.requests * 2
                figures[f"native base64 JSON c={c}"] = asyncio.run(load(f"{server.url}/{m}/query_once", native, c, n))
                figures[f"v2 binary /{m}/v2 c={c}"] = asyncio.run(
                    load(f"{server.url}/{m}/v2/models/{m}/infer", body, c, n, headers))
                figures[f"v2 binary /v2 c={c}"] = asyncio.run(load(f"{server.url}/v2/models/{m}/infer", body, c, n,
                                                                    headers))
                figures[f"v2 gRPC c={c}"] = asyncio.run(grpc_load(f"127.0.0.1:{grpc_port}", m, jpeg, c, n))
        finally:
            server.stop()
    print(f"{'route':28} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>7} {'CPU ms/req':>10}  statuses")
    for name, f in figures.items():
        print(f"{name:28} {f['p50_ms']:8.1f} {f['p99_ms']:8.1f} {f['rps']:7.1f} {f['cpu_ms_per_request']:10.1f}  "
              f"{f['statuses']}")


if __name__ == "__main__":
    main()
