"""DenseCap raw vs served (a real local Ray Serve), concurrency 1 and 4, on a real photo.

    .venv/bin/python -m loadtest.bench_densecap [--checkpoint densecap-pretrained-vgg16.t7] [--shrink 16]
        [--requests 20] [--image PATH]

Without --checkpoint the benchmark writes a checkpoint in the released Torch7 format with random weights,
VGG-16's layers at widths divided by --shrink (1: the released sizes, 1.2 GB of random weights). Prints the raw
model's latency in process (decode + infer, batch 1, and per image in a batch of 4), the served latency p50/p99,
throughput and CPU per request at concurrency 1 and 4, and the served/raw ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import copy
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from loadtest.bench import load
from loadtest.servers import REPO, LocalServer, use_shared_folder
from serve.catalog import parse_catalog
from serve.codecs import decode_image
from serve.runner import build_model

EXAMPLE = REPO / "examples/densecap.json"
PORT, METRICS_PORT = 18422, 18423


def bench_entry(checkpoint: Path) -> dict:
    entry = copy.deepcopy(json.loads(EXAMPLE.read_text())[0])
    entry["serving"]["weights"]["checkpoint"]["path"] = str(checkpoint)
    entry["serving"]["resources"] = {"num_cpus": 1}
    return entry


def raw_figures(entry: dict, data: str, reps: int) -> dict:
    parsed = parse_catalog([entry]).entries[0]
    limits = parsed.serving.limits
    model = build_model(parsed, REPO)
    t0 = time.perf_counter()
    model.load()
    load_s = time.perf_counter() - t0
    decode = lambda: decode_image(data, limits.max_bytes, limits.max_pixels)  # noqa: E731
    model.infer([decode()])  # warm-up
    single, stages = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        _, timings = model.infer_timed([decode()])
        single.append((time.perf_counter() - t0) * 1e3)
        stages.append(timings)
    image = decode()
    batch = []
    for _ in range(max(2, reps // 4)):
        t0 = time.perf_counter()
        model.infer([image] * 4)
        batch.append((time.perf_counter() - t0) * 1e3 / 4)
    return {"load_s": load_s, "p50_ms": statistics.median(single), "batch4_ms_per_image": statistics.median(batch),
            "predict_ms": statistics.median(s.predict for s in stages) * 1e3,
            "preprocess_ms": statistics.median(s.preprocess for s in stages) * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", help="a DenseCap .t7 (default: write one with random weights)")
    parser.add_argument("--shrink", type=int, default=16, help="VGG-16 widths divided by this (written checkpoint)")
    parser.add_argument("--image", default=None, help="default: shared/images/dog.jpg")
    parser.add_argument("--requests", type=int, default=20, help="requests at concurrency 1 (twice that at 4)")
    args = parser.parse_args()
    shared = use_shared_folder()
    os.environ["PYTHONPATH"] = str(REPO)  # the server runs this checkout's code
    image_path = Path(args.image or shared / "images/dog.jpg")
    data = "data:image/jpeg;base64," + base64.b64encode(image_path.read_bytes()).decode()
    body = json.dumps({"data": data}).encode()

    with tempfile.TemporaryDirectory() as workdir:
        checkpoint = Path(args.checkpoint) if args.checkpoint else Path(workdir) / "densecap-bench.t7"
        if not args.checkpoint:
            from tests.models.densecap_files import write_checkpoint

            write_checkpoint(checkpoint, caption=["a", "dog", "on", "the", "grass"], shrink=args.shrink,
                             rnn_size=max(32, 512 // args.shrink))  # the release: 512 units
        what = args.checkpoint or f"written checkpoint, VGG-16 widths / {args.shrink}"
        print(f"# densecap on {image_path.name}, {os.cpu_count()} CPUs ({what}, "
              f"{checkpoint.stat().st_size / 2**20:.1f} MiB)")
        entry = bench_entry(checkpoint)
        raw = raw_figures(entry, data, reps=max(3, args.requests // 2))
        print(f"raw model: load {raw['load_s']:.2f} s; decode + infer p50 {raw['p50_ms']:.1f} ms (preprocess "
              f"{raw['preprocess_ms']:.1f}, predict {raw['predict_ms']:.1f}); batch of 4: "
              f"{raw['batch4_ms_per_image']:.1f} ms/image")
        server = LocalServer([entry], Path(workdir), port=PORT, metrics_port=METRICS_PORT).start()
        try:
            server.wait_loaded(timeout_s=600)
            url = server.url + f"/{entry['name']}/query_once"
            print(f"{'served':8} {'c':>3} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>7} {'CPU ms/req':>10}  statuses")
            for concurrency in (1, 4):
                m = asyncio.run(load(url, body, concurrency, args.requests * (1 if concurrency == 1 else 2)))
                print(f"{'served':8} {concurrency:>3} {m['p50_ms']:8.1f} {m['p99_ms']:8.1f} {m['rps']:7.2f} "
                      f"{m['cpu_ms_per_request']:10.1f}  {m['statuses']}")
                if concurrency == 1:
                    print(f"served/raw p50 at c=1: {m['p50_ms'] / raw['p50_ms']:.2f}x "
                          f"(+{m['p50_ms'] - raw['p50_ms']:.1f} ms)")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
