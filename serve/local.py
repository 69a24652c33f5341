"""Run the catalog on this machine: embedded Ray (no cluster), Serve on 127.0.0.1:8000, nothing beyond
loopback. Ray binds 0.0.0.0 unless RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 is set with a loopback node address;
Serve replicas' internal gRPC servers are rebound by `serve.local_only` (RUNWAY_LOCAL_ONLY=1)."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from serve.catalog import Catalog
from serve.describe import availability
from serve.front import LOCAL_DEFAULT_FRONT, local_front_env
from serve.heap import MALLOC_ENV
from serve.protocols.proxy import PROXY_CALLBACK, PROXY_CALLBACK_ENV

logger = logging.getLogger("runway_models")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
CATALOG_APP = "catalog"  # the Serve application at / (serve/catalog_app.py)


@dataclass
class LocalSettings:
    catalog_path: Path
    models: list[str] | None = None  # None: every model Ray can serve
    host: str = "127.0.0.1"
    port: int = 8000
    metrics_port: int = 8080
    num_cpus: int | None = None
    grpc_port: int | None = None  # the Open Inference Protocol over gRPC (Serve's gRPC proxy); None: off
    front: str = LOCAL_DEFAULT_FRONT  # serve/front.py: Ray's Python proxy or HAProxy with direct ingress


def servable(catalog: Catalog, wanted: list[str] | None) -> list[str]:
    """Names to deploy: the ones asked for (unknown names are an error) that have a built implementation."""
    unknown = sorted(set(wanted or []) - set(catalog.names))
    if unknown:
        raise SystemExit(f"unknown model(s): {', '.join(unknown)}; the catalog has {', '.join(catalog.names)}")
    names = wanted or catalog.names
    return [n for n in names if availability(catalog.get(n)) is None]


def ensure_free(host: str, *ports: int) -> None:
    """Fail early and clearly when a port is taken (often: a previous server still shutting down); Ray would
    otherwise time out after 30 s with a message about the raylet."""
    for port in ports:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is no conflict
            try:
                probe.bind((host, port))
            except OSError:
                raise SystemExit(f"port {port} on {host} is in use (another runway-models or Ray still running?)")


def start(settings: LocalSettings, catalog: Catalog) -> list[str]:
    """Start Ray and Serve and deploy the apps; returns the model names deployed. Does not block."""
    ensure_free(settings.host, settings.port, settings.metrics_port, *([settings.grpc_port] if settings.grpc_port else []))
    local_only = settings.host in LOOPBACK
    if local_only:
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        os.environ["RUNWAY_LOCAL_ONLY"] = "1"  # inherited by the raylet, so by every replica
    os.environ.setdefault("RUNWAY_SHARED", str((catalog.base_dir / ".." / "shared").resolve()))
    os.environ[PROXY_CALLBACK_ENV] = PROXY_CALLBACK  # the proxy answers its own failures in JSON too
    os.environ.update(local_front_env(settings.front, settings.host))  # read by Serve's controller at import
    for name, value in MALLOC_ENV.items():  # read by glibc at process start: set before Ray starts its workers
        os.environ.setdefault(name, value)
    import ray
    from ray import serve

    from serve.app import HOSTED_GATEWAY_SUFFIX, build_catalog_app, build_hosted_gateway_app, build_model_app

    ray.init(address="local", _node_ip_address="127.0.0.1" if local_only else None, include_dashboard=False,
             _metrics_export_port=settings.metrics_port, num_cpus=settings.num_cpus,
             logging_level=logging.WARNING, log_to_driver=True,
             runtime_env={"worker_process_setup_hook": "serve.local_only.setup_haproxy_worker"}
             if local_only and settings.front == "haproxy" else None)
    grpc_options = None
    if settings.grpc_port:
        from ray.serve.config import gRPCOptions

        from serve.protocols.v2_grpc import SERVICER_FUNCTION

        grpc_options = gRPCOptions(port=settings.grpc_port, grpc_servicer_functions=[SERVICER_FUNCTION])
    serve.start(http_options={"host": settings.host, "port": settings.port}, grpc_options=grpc_options,
                proxy_location="HeadOnly")
    names = servable(catalog, settings.models)
    args = {"catalog": str(settings.catalog_path.resolve())}
    metrics_url = f"http://127.0.0.1:{settings.metrics_port}/metrics"
    targets = [serve.RunTarget(build_catalog_app({**args, "metrics_url": metrics_url, "models": names}),
                               name=CATALOG_APP, route_prefix="/")]
    targets += [serve.RunTarget(build_model_app({**args, "model": n}), name=n, route_prefix=f"/{n}")
                for n in names]
    targets += [serve.RunTarget(build_hosted_gateway_app({**args, "model": n}), name=n + HOSTED_GATEWAY_SUFFIX,
                                route_prefix=catalog.get(n).hosted_path)
                for n in names if catalog.get(n).serving.autoscaling.sleeps]
    serve.run_many(targets, wait_for_applications_running=False)
    report_until_running(names)
    return names


def report_until_running(names: list[str], poll_s: float = 0.5, every_s: float = 2.0) -> None:
    """Print each model's load progress (a download's bytes, the load's seconds, then ready or failed) until
    every application runs: Serve alone is silent until the last model has loaded. The catalog app answers
    GET / meanwhile, with the same progress."""
    from ray import serve

    from serve.progress import read_progress

    said: dict[str, tuple[str, float]] = {}  # model -> (what was printed last, when)

    def say(name: str, key: str, text: str, repeat: bool = False) -> None:
        """Print on a change of phase; a phase whose figures move (`repeat`) again every `every_s`."""
        last_key, at = said.get(name, ("", 0.0))
        if key != last_key or (repeat and time.monotonic() - at >= every_s):
            print(f"runway-models: {name}: {text}", flush=True)
            said[name] = (key, time.monotonic())

    pending = [CATALOG_APP, *names]
    while pending:
        apps = serve.status().applications
        for name in list(pending):
            app = apps.get(name)
            if app is not None and app.status in ("DEPLOY_FAILED", "UNHEALTHY"):
                raise RuntimeError(f"application {name} failed to deploy: {app.message}")
            if app is not None and app.status == "RUNNING":
                pending.remove(name)
                if name != CATALOG_APP:
                    status = serve.get_app_handle(name).model_status.remote().result(timeout_s=30)
                    done = f"loaded in {status['load_seconds']:.1f} s" if status["state"] == "ready" else \
                        f"{status['state']}: {status['detail']}"
                    say(name, "done", done)
            elif name != CATALOG_APP:
                progress = read_progress(name)
                if progress:
                    say(name, f"{progress.phase}:{progress.file}", progress.text(), repeat=True)
                elif name not in said:  # after its last progress, a replica only has Serve's checks left
                    say(name, "starting", "starting a replica")
        time.sleep(poll_s)


def stop(grace_s: float = 10.0) -> None:
    """Drain, then shut Serve and Ray down, then end any Ray process that outlived it (Ray's dashboard and
    runtime-env agents linger for a minute or more after `ray.shutdown()`, holding the metrics port a restart
    needs). The apps are deleted first, while the proxy still runs: their replicas finish the requests in flight
    and answer them, where `serve.shutdown()` alone would end the proxy under them (the clients saw the connection
    drop)."""
    import psutil
    import ray
    from ray import serve

    if not ray.is_initialized():  # start failed before Ray came up; serve.shutdown() would start one
        return
    ray_processes = psutil.Process().children(recursive=True)
    try:
        drain(grace_s / 2)
        serve.shutdown()
    finally:
        ray.shutdown()
        for process in ray_processes:
            try:
                process.terminate()
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(ray_processes, timeout=grace_s)
        for process in alive:
            process.kill()


def drain(timeout_s: float) -> None:
    """Delete every app and wait (up to `timeout_s`) until their replicas have answered what they hold."""
    from ray import serve

    names = list(serve.status().applications)
    for name in names:
        serve.delete(name, _blocking=False)
    deadline = time.monotonic() + timeout_s
    while serve.status().applications and time.monotonic() < deadline:
        time.sleep(0.1)


def run_until_signalled(settings: LocalSettings, catalog: Catalog) -> None:
    """Serve until Ctrl-C or SIGTERM, then shut Serve and Ray down cleanly."""
    done = threading.Event()

    def on_signal(*_):
        done.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    try:
        names = start(settings, catalog)
        signal.signal(signal.SIGTERM, on_signal)  # ray.init installs its own SIGTERM handler: take it back
        grpc = f", gRPC (Open Inference Protocol) on {settings.host}:{settings.grpc_port}" if settings.grpc_port else ""
        print(f"runway-models: serving {', '.join(names) or 'no models'} on http://{settings.host}:{settings.port} "
              f"(catalog GET /, readiness /readyz, metrics /metrics{grpc})", flush=True)
        done.wait()
    finally:
        print("runway-models: shutting down", flush=True)
        stop()
