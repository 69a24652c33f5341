"""Raw model vs served (Ray Serve, this stack) vs the plain-uvicorn peers, in one run on this machine.

    .venv/bin/python -m loadtest.bench [--model all|yolo,movenet] [--requests 60] [--json build/bench.json]

For each model, one server at a time and the same aiohttp client: the thread-pool peer (the headline: decode and
inference together in a pool sized like the machine's cores, no lock), the serialized peer (a lock around
inference) and `runway-models serve --models MODEL` with each front (`--fronts`: Ray's Python proxy, HAProxy with
direct ingress; serve/front.py), at concurrency 1 and 16. Prints latency p50/p99, throughput, CPU ms per request
(the server's process tree and this client), the busy % and the ratios served/thread-pool peer (throughput at
c=16, p50 at c=1) per front; writes the same figures as JSON (`--json`).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np
from PIL import Image

from loadtest.peer_app import MODES as PEER_MODES
from loadtest.servers import REPO, LocalServer, PeerServer, use_shared_folder
from serve.catalog import load_catalog
from serve.codecs import decode_image
from serve.front import FRONTS
from serve.local import servable
from serve.runner import build_model
from serve.weights import WeightsNotFetched

CONCURRENCY = (1, 16)
DEFAULT_JSON = REPO / "build" / "bench.json"

def cpu_busy_s() -> float:
    """Seconds of CPU spent by the whole machine so far (all processes: client, proxy, replicas)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def tree_cpu_s(root: int) -> float:
    """CPU seconds (user + system) of process `root` and its live descendants (the server: for Ray Serve its
    GCS, raylet, proxy and replicas): its own work, whatever other jobs on the machine do meanwhile."""
    parents, cpu = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:  # exited meanwhile
            continue
        fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "
        parents[int(entry.name)], cpu[int(entry.name)] = int(fields[1]), int(fields[11]) + int(fields[12])
    tree, grew = {root}, True
    while grew:
        children = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= children
        grew = bool(children)
    return sum(cpu.get(pid, 0) for pid in tree) / os.sysconf("SC_CLK_TCK")


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


async def load(url: str, body: bytes, concurrency: int, requests: int, headers: dict | None = None,
               server_pid: int | None = None) -> dict:
    """`requests` POSTs from `concurrency` workers. CPU per request and busy %: the server's process tree plus
    this client when `server_pid` is given (other jobs on a shared machine do not count), else the machine's."""

    def cpu_s() -> float:
        return tree_cpu_s(server_pid) + time.process_time() if server_pid else cpu_busy_s()

    headers = headers or {"content-type": "application/json"}
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    remaining = requests

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            t0 = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                statuses[response.status] = statuses.get(response.status, 0) + 1
            latencies.append((time.perf_counter() - t0) * 1e3)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(3):  # warm-up
            async with session.post(url, data=body, headers=headers) as r:
                await r.read()
        cpu0, machine0, t0 = cpu_s(), cpu_busy_s(), time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed, cpu, machine = time.perf_counter() - t0, cpu_s() - cpu0, cpu_busy_s() - machine0
    cores = os.cpu_count() or 1
    answered = sum(n for status, n in statuses.items() if status < 400)  # refusals (503) are no throughput
    return {"p50_ms": pct(latencies, 50), "p99_ms": pct(latencies, 99), "rps": answered / elapsed,
            "cpu_ms_per_request": cpu / len(latencies) * 1e3, "busy_pct": 100 * cpu / (elapsed * cores),
            "machine_busy_pct": 100 * machine / (elapsed * cores), "statuses": statuses}


def measure(url: str, body: bytes, requests: int, server_pid: int | None = None) -> dict:
    """Concurrency 1 (`requests`) and 16 (twice as many), keyed by concurrency."""
    return {c: asyncio.run(load(url, body, c, requests if c == 1 else requests * 2, server_pid=server_pid))
            for c in CONCURRENCY}


def served_key(front: str) -> str:
    return f"served-{front}"


def ratios(f: dict, front: str) -> dict:
    """served / thread-pool peer (the issue's goals: throughput at c=16 >= 0.95, p50 at c=1 <= 1.05) and
    served / serialized peer, for the stack with this front."""
    served, tp, ser = f[served_key(front)], f["threadpool"], f["serialized"]
    return {"served/threadpool rps c=16": served[16]["rps"] / tp[16]["rps"],
            "served/threadpool p50 c=1": served[1]["p50_ms"] / tp[1]["p50_ms"],
            "served/serialized rps c=16": served[16]["rps"] / ser[16]["rps"],
            "served/serialized p50 c=1": served[1]["p50_ms"] / ser[1]["p50_ms"]}


def bench_model(catalog_path: Path, name: str, body: bytes, data: str, requests: int, port: int,
                fronts: list[str]) -> dict:
    """One model: raw in process, then each peer, then the served stack with each front, one server at a time."""
    figures = {"raw": raw_figures(catalog_path, name, data, reps=20)}
    route = load_catalog(catalog_path).get(name).http_path
    for mode in PEER_MODES:
        peer = PeerServer(catalog_path, name, port=port + 2, mode=mode).start()
        try:
            figures[mode] = measure(peer.url + route, body, requests, peer.process.pid)
        finally:
            peer.stop()
    for front in fronts:
        with tempfile.TemporaryDirectory() as workdir:
            catalog = json.loads(catalog_path.read_text())
            with LocalServer(catalog, Path(workdir), port=port, metrics_port=port + 1, models=[name],
                             front=front) as server:
                figures[served_key(front)] = measure(server.url + route, body, requests, server.process.pid)
    figures["ratios"] = {front: ratios(figures, front) for front in fronts}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="all", help="a model, a comma-separated list, or all (every served model)")
    parser.add_argument("--catalog", default=str(REPO / "models.json"))
    parser.add_argument("--image", default=None, help="default: shared/images/dog.jpg")
    parser.add_argument("--requests", type=int, default=60, help="at concurrency 1; twice as many at 16")
    parser.add_argument("--port", type=int, default=18100, help="the served stack's; +1 its metrics, +2 the peers")
    parser.add_argument("--json", default=str(DEFAULT_JSON), help=f"write the figures here (default {DEFAULT_JSON})")
    parser.add_argument("--fronts", default=",".join(FRONTS), help="the served stack's fronts to measure, comma-"
                                                                     "separated (serve/front.py; default: all)")
    args = parser.parse_args()
    fronts = [f for f in args.fronts.split(",") if f]
    unknown = sorted(set(fronts) - set(FRONTS))
    if unknown:
        parser.error(f"unknown front(s) {', '.join(unknown)}; choose from {', '.join(FRONTS)}")
    shared = use_shared_folder()
    catalog_path = Path(args.catalog).resolve()
    names = servable(load_catalog(catalog_path), None if args.model == "all" else args.model.split(","))
    image_path = Path(args.image or shared / "images/dog.jpg")
    data = "data:image/jpeg;base64," + base64.b64encode(image_path.read_bytes()).decode()
    body = json.dumps({"data": data}).encode()
    w, h = Image.open(image_path).size
    result = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "command": " ".join(["python -m loadtest.bench", *sys.argv[1:]]), "cpus": os.cpu_count(),
              "image": f"{image_path.name} ({w}x{h}, {len(body)} B JSON)", "requests_c1": args.requests,
              "requests_c16": args.requests * 2, "models": {}}
    print(f"# {', '.join(names)} on {result['image']}, {os.cpu_count()} CPUs, {args.requests} requests at c=1, "
          f"{args.requests * 2} at c=16")
    for name in names:
        try:
            result["models"][name] = bench_model(catalog_path, name, body, data, args.requests, args.port, fronts)
        except WeightsNotFetched as exc:  # e.g. densecap's 1.1 GB checkpoint: `all` means what can run here
            print(f"\n## {name}: skipped, {exc}")
            continue
        report(name, result["models"][name])
    summary(result["models"])
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2, default=str))
    print(f"figures: {args.json}")


def report(name: str, f: dict) -> None:
    raw = f["raw"]
    print(f"\n## {name}")
    print(f"raw model: batch 1 {raw['batch1_ms']:.1f} ms/image; best batch {raw['best_batch']} "
          f"{raw['best_batch_ms_per_image']:.1f} ms/image; per batch size "
          f"{json.dumps({k: round(v, 1) for k, v in raw['per_image_ms'].items()})}; "
          f"decode + infer p50 {raw['decode_plus_infer_p50_ms']:.1f} ms")
    print(f"{'server':11} {'c':>3} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>7} {'CPU ms/req':>10} {'busy %':>6} "
          f"{'machine %':>9}  statuses")
    for server in (*PEER_MODES, *map(served_key, f["ratios"])):
        for c, m in f[server].items():
            print(f"{server:15} {c:>3} {m['p50_ms']:8.1f} {m['p99_ms']:8.1f} {m['rps']:7.1f} "
                  f"{m['cpu_ms_per_request']:10.1f} {m['busy_pct']:6.0f} {m['machine_busy_pct']:9.0f}  {m['statuses']}")
    for front, r in f["ratios"].items():
        print(f"{front}: " + "  ".join(f"{k}: {v:.2f}x" for k, v in r.items()))


def summary(models: dict) -> None:
    """One line per model: the issue's goals side by side (req/s with CPU ms/req and busy % at c=16)."""
    print("\n| model | front | thread-pool c=1 p50 | served c=1 p50 | served/tp p50 | thread-pool c=16 "
          "| served c=16 | served/tp req/s | serialized c=16 | served/serialized req/s |")
    print("|---|---|---|---|---|---|---|---|---|---|")

    def at16(m: dict) -> str:
        return f"{m['rps']:.1f} req/s ({m['cpu_ms_per_request']:.0f} CPU ms/req, {m['busy_pct']:.0f} % busy)"

    for (name, f), front in ((item, front) for item in models.items() for front in item[1]["ratios"]):
        tp, served, ser, r = f["threadpool"], f[served_key(front)], f["serialized"], f["ratios"][front]
        print(f"| {name} | {front} | {tp[1]['p50_ms']:.1f} ms ({tp[1]['cpu_ms_per_request']:.0f} CPU ms) "
              f"| {served[1]['p50_ms']:.1f} ms ({served[1]['cpu_ms_per_request']:.0f} CPU ms) "
              f"| {r['served/threadpool p50 c=1']:.2f}x | {at16(tp[16])} | {at16(served[16])} "
              f"| {r['served/threadpool rps c=16']:.2f}x | {at16(ser[16])} | {r['served/serialized rps c=16']:.2f}x |")


if __name__ == "__main__":
    main()
