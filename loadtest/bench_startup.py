"""Cold start and memory of the whole stack: `runway-models serve` with every model of a catalog, timed from the
command to /readyz 200 (and to each model's first answer state), then the PSS of every process it started (Ray's
GCS, raylet, dashboard and agents, the Serve controller and proxy, every replica), idle and after one answer per
model. PSS counts shared pages (torch, TensorFlow libraries mapped by several replicas) once, in shares.

    .venv/bin/python -m loadtest.bench_startup [--catalog models.json] [--runs 2] [--json build/startup.json]
"""

from __future__ import annotations

import argparse
import base64
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx
import psutil

from loadtest.servers import REPO, LocalServer, add_front_option, use_shared_folder
from serve.catalog import load_catalog

PORT, METRICS_PORT = 18640, 18641


def process_tree_pss_mib(server: LocalServer) -> dict[str, float]:
    """PSS by process role, MiB: the server and every process below it (Ray's GCS and raylet are its children,
    the workers the raylet's)."""
    root = psutil.Process(server.process.pid)
    by_role: dict[str, float] = defaultdict(float)
    for process in [root, *root.children(recursive=True)]:
        try:
            by_role[role_of(process.cmdline())] += process.memory_full_info().pss / 2**20
        except psutil.Error:
            continue
    return dict(sorted(by_role.items(), key=lambda kv: -kv[1]))


def role_of(cmdline: list[str]) -> str:
    text = " ".join(cmdline)
    for marker, role in (("ServeReplica:", None), ("ServeController", "serve controller"),
                         ("ProxyActor", "serve proxy"), ("gcs_server", "ray gcs"), ("raylet", "raylet"),
                         ("ray::IDLE", "ray idle workers"), ("default_worker.py", "ray idle workers"),
                         ("Dashboard", "ray dashboard + agents"), ("dashboard", "ray dashboard + agents"),
                         ("RuntimeEnv", "ray dashboard + agents"), ("runtime_env", "ray dashboard + agents"),
                         ("log_monitor", "ray log monitor"), ("runway-models", "runway-models (driver)")):
        if marker in text:
            if role is None:  # ServeReplica:<app>:<deployment>
                return "replica " + text.split(marker, 1)[1].split()[0].split(":")[0]
            return role
    return "other: " + text[:60]


def one_answer_each(url: str, catalog_path: Path, image: Path) -> dict[str, int]:
    catalog = load_catalog(catalog_path)
    data = "data:image/jpeg;base64," + base64.b64encode(image.read_bytes()).decode()
    statuses = {}
    for entry in catalog.entries:
        if entry.serving is None:
            continue
        response = httpx.post(url + entry.http_path, json={"data": data}, timeout=120)
        statuses[entry.name] = response.status_code
    return statuses


def cold_start(catalog_path: Path, workdir: Path, image: Path, front: str | None = None) -> dict:
    server = LocalServer(json.loads(catalog_path.read_text()), workdir, port=PORT, metrics_port=METRICS_PORT,
                         front=front)
    started = time.monotonic()
    server.start()
    serving_s = time.monotonic() - started
    ready_s, ready_at = None, {}
    while time.monotonic() - started < 300:
        try:
            response = httpx.get(server.url + "/readyz", timeout=5)
        except httpx.HTTPError:
            time.sleep(0.2)
            continue
        for name, model in response.json()["models"].items():
            if model["state"] != "loading" and name not in ready_at:
                ready_at[name] = round(time.monotonic() - started, 1)
        if response.status_code == 200:
            ready_s = time.monotonic() - started
            break
        time.sleep(0.2)
    try:
        idle = process_tree_pss_mib(server)
        answers = one_answer_each(server.url, catalog_path, image)
        loaded = process_tree_pss_mib(server)
    finally:
        server.stop()
    return {"serving_s": round(serving_s, 1), "readyz_200_s": round(ready_s, 1) if ready_s else None,
            "model_settled_s": ready_at, "answers": answers,
            "pss_mib_idle": {k: round(v) for k, v in idle.items()}, "pss_mib_after_answers": {k: round(v) for k, v in loaded.items()},
            "pss_total_mib_idle": round(sum(idle.values())), "pss_total_mib_after_answers": round(sum(loaded.values()))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", type=Path, default=REPO / "models.json")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--image", type=Path, default=None, help="default: shared/images/dog.jpg")
    parser.add_argument("--json", type=Path, default=REPO / "build" / "startup.json")
    add_front_option(parser)
    args = parser.parse_args()
    image = args.image or use_shared_folder() / "images" / "dog.jpg"
    runs = []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory() as workdir:
            run = cold_start(args.catalog.resolve(), Path(workdir), image, args.front)
        runs.append(run)
        print(f"run {i + 1}: 'serving' printed at {run['serving_s']} s, /readyz 200 at {run['readyz_200_s']} s; "
              f"models settled at {run['model_settled_s']}; answers {run['answers']}")
        print(f"  PSS idle {run['pss_total_mib_idle']} MiB, after one answer per model "
              f"{run['pss_total_mib_after_answers']} MiB:")
        for role, mib in run["pss_mib_after_answers"].items():
            print(f"    {role:32s} {mib:6d} MiB")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"catalog": str(args.catalog), "front": args.front, "runs": runs}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
