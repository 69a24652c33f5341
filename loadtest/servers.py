"""Servers in subprocesses for the slow tests and the benchmarks: a real `runway-models serve` on its own
ports, and the plain-uvicorn peer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
EXE = Path(sys.executable).with_name("runway-models")


def use_shared_folder() -> Path:
    """The shared folder (weights, photos): RUNWAY_SHARED, default ../shared beside the repository. Set for the
    servers started from here, whose catalogs, written to temporary folders, name weights by ${RUNWAY_SHARED}."""
    shared = Path(os.environ.get("RUNWAY_SHARED", REPO.parent / "shared")).resolve()
    os.environ["RUNWAY_SHARED"] = str(shared)
    return shared


def add_front_option(parser) -> None:
    """`--front` of a benchmark that starts one served stack (serve/front.py)."""
    from serve.front import FRONTS

    parser.add_argument("--front", choices=FRONTS, default=None,
                        help="the served stack's front (serve/front.py; default: the server's)")


class LocalServer:
    def __init__(self, catalog: list[dict], workdir: Path, port: int = 18000, metrics_port: int = 18080,
                 models: list[str] | None = None, grpc_port: int | None = None, env: dict[str, str] | None = None,
                 front: str | None = None):
        self.catalog_path = workdir / "models.json"
        self.catalog_path.write_text(json.dumps(catalog))
        self.log_path = workdir / "serve.log"
        self.port, self.metrics_port, self.models, self.grpc_port = port, metrics_port, models, grpc_port
        self.front = front  # serve/front.py; None: the server's default ($RUNWAY_FRONT or python)
        self.extra_env = env or {}  # e.g. tokens (RUNWAY_TOKEN_<NAME>); the server and its replicas inherit it
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 240) -> LocalServer:
        cmd = [str(EXE), "serve", "--catalog", str(self.catalog_path), "--port", str(self.port),
               "--metrics-port", str(self.metrics_port)]
        if self.models:
            cmd += ["--models", ",".join(self.models)]
        if self.grpc_port:
            cmd += ["--grpc-port", str(self.grpc_port)]
        if self.front:
            cmd += ["--front", self.front]
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO,
                                        env=self.env(), start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited {self.process.returncode}:\n{self.tail()}")
            if "runway-models: serving" in self.log_path.read_text():
                return self
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"server did not start in {timeout_s}s:\n{self.tail()}")

    def env(self) -> dict[str, str]:
        """This checkout's code first: the shared virtualenv's editable install may point at another checkout
        (a worktree), and Ray's workers inherit PYTHONPATH from the server."""
        path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
        return {**os.environ, **self.extra_env, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path}

    def __enter__(self) -> LocalServer:
        """Started, every model loaded (or failed); stopped on exit: what a module-scoped test fixture needs."""
        self.start()
        try:
            self.wait_loaded()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def wait_loaded(self, timeout_s: float = 120) -> dict:
        """Wait until no model is still loading; return the /readyz body."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            body = httpx.get(self.url + "/readyz", timeout=10).json()
            if all(m["state"] != "loading" for m in body["models"].values()):
                return body
            time.sleep(0.5)
        raise TimeoutError(f"models still loading: {body}")

    def stop(self, timeout_s: float = 60, signum: int = signal.SIGTERM, group: bool = False) -> int:
        """Signal the server (or its whole process group, as `timeout`, systemd and Ctrl-C do) and wait."""
        if self.process and self.process.poll() is None:
            if group:
                os.killpg(self.process.pid, signum)
            else:
                self.process.send_signal(signum)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return self.process.returncode

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text().splitlines()[-lines:])


class PeerServer:
    """`loadtest.peer_app` (plain uvicorn + FastAPI, same pipeline; `mode` threadpool or serialized) in a
    subprocess."""

    def __init__(self, catalog_path: Path, model: str, port: int = 18200, mode: str = "threadpool"):
        self.url = f"http://127.0.0.1:{port}"
        self.cmd = [sys.executable, "-m", "loadtest.peer_app", "--catalog", str(catalog_path), "--model", model,
                    "--port", str(port), "--mode", mode]
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 120) -> PeerServer:
        self.process = subprocess.Popen(self.cmd, cwd=REPO)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url + "/docs", timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.5)
        self.stop()
        raise TimeoutError("peer server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)
