"""The served stack under several `serving.threads` settings against the thread-pool peer, in one run.

    .venv/bin/python -m loadtest.bench_threads --model yolo [--variants 1x1,2x1,1x2,2x2] [--requests 40]

A variant BxI serves the model with `threads: {"batches": B, "intra_op": I}` (B batches computing at once, torch
ops on I threads); `default` leaves the catalog's section as it is. Prints, per variant, latency p50 at
concurrency 1, throughput at 16, CPU ms per request, busy % and the ratios to the peer measured in the same run.
"""

from __future__ import annotations

import argparse
import base64
import json
import tempfile
from pathlib import Path

from loadtest.bench import measure
from loadtest.servers import REPO, LocalServer, PeerServer, use_shared_folder
from serve.catalog import load_catalog


def with_threads(catalog: list[dict], model: str, variant: str) -> list[dict]:
    """A copy of the catalog whose `model` entry has the variant's threads section."""
    catalog = json.loads(json.dumps(catalog))
    if variant != "default":
        batches, intra_op = (int(n) for n in variant.split("x"))
        for entry in catalog:
            if entry["name"] == model:
                entry["serving"]["threads"] = {"batches": batches, "intra_op": intra_op}
    return catalog


def line(name: str, m: dict, peer: dict | None = None) -> str:
    text = (f"{name:12} c=1 p50 {m[1]['p50_ms']:7.1f} ms ({m[1]['cpu_ms_per_request']:5.1f} CPU ms) | c=16 "
            f"{m[16]['rps']:6.1f} req/s ({m[16]['cpu_ms_per_request']:5.1f} CPU ms/req, {m[16]['busy_pct']:3.0f} % "
            f"busy, machine {m[16]['machine_busy_pct']:3.0f} %) {m[16]['statuses']}")
    if peer:
        text += (f" | vs peer: req/s {m[16]['rps'] / peer[16]['rps']:.2f}x, "
                 f"p50 {m[1]['p50_ms'] / peer[1]['p50_ms']:.2f}x")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="yolo")
    parser.add_argument("--catalog", default=str(REPO / "models.json"))
    parser.add_argument("--variants", default="1x1,2x1,1x2,2x2", help="BxI (batches x intra-op threads) or default")
    parser.add_argument("--requests", type=int, default=40, help="at concurrency 1; twice as many at 16")
    parser.add_argument("--port", type=int, default=18100, help="the served stack's; +1 its metrics, +2 the peer")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    shared = use_shared_folder()
    data = "data:image/jpeg;base64," + base64.b64encode((shared / "images/dog.jpg").read_bytes()).decode()
    body = json.dumps({"data": data}).encode()
    catalog_path = Path(args.catalog).resolve()
    route = load_catalog(catalog_path).get(args.model).http_path
    catalog = json.loads(catalog_path.read_text())

    peer = PeerServer(catalog_path, args.model, port=args.port + 2).start()
    try:
        figures = {"threadpool peer": measure(peer.url + route, body, args.requests, peer.process.pid)}
    finally:
        peer.stop()
    print(line("peer", figures["threadpool peer"]), flush=True)
    for variant in args.variants.split(","):
        with tempfile.TemporaryDirectory() as workdir, \
                LocalServer(with_threads(catalog, args.model, variant), Path(workdir), port=args.port,
                            metrics_port=args.port + 1, models=[args.model]) as server:
            figures[variant] = measure(server.url + route, body, args.requests, server.process.pid)
        print(line(f"served {variant}", figures[variant], figures["threadpool peer"]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
