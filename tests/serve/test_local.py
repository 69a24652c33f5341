"""`runway-models serve` as a user runs it: ready, loopback only (Ray's own ports included), and SIGTERM
shuts everything down: no Ray process left, the ports free again."""

from __future__ import annotations

import base64
import json
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil
import pytest

from loadtest.servers import REPO, LocalServer
from serve.front import FRONTS
from serve.supervisor import STOP_BUDGET_S

pytestmark = pytest.mark.slow


def listening_sockets(pids: set[int]) -> list[tuple[int, str, int]]:
    return [(c.pid, c.laddr.ip, c.laddr.port) for c in psutil.net_connections("inet")
            if c.status == psutil.CONN_LISTEN and c.pid in pids]


@pytest.mark.parametrize("front", FRONTS)
def test_serve_is_ready_loopback_only_and_stops_cleanly(tmp_path, shared, front):
    server = LocalServer(json.loads((REPO / "models.json").read_text()), tmp_path, port=18300,
                         metrics_port=18380, models=["yolo"], front=front).start()
    try:
        ready = server.wait_loaded()
        assert ready["ready"] is True and ready["models"]["yolo"]["state"] == "ready"
        assert httpx.get(server.url + "/readyz").status_code == 200
        family = {server.process.pid} | {p.pid for p in psutil.Process(server.process.pid).children(recursive=True)}
        sockets = listening_sockets(family)
        ports = {port for _, _, port in sockets}
        assert {18300, 18380} <= ports
        front_process = {psutil.Process(pid).name() for pid, _, port in sockets if port == 18300}
        assert ("haproxy" in front_process) == (front == "haproxy"), front_process
        # every listener of the server and of Ray (GCS, raylet, agents, replicas' gRPC; with HAProxy, its stats,
        # Prometheus and fallback-proxy listeners and the replicas' HTTP ports) is on loopback
        assert all(ip in ("127.0.0.1", "::1", "::ffff:127.0.0.1") for _, ip, _ in sockets), sockets
    finally:
        code = server.stop()
    assert code == 0, server.tail()
    leftovers = [p for p in psutil.process_iter(["pid", "name"]) if p.info["pid"] in family and p.is_running()
                 and p.status() != psutil.STATUS_ZOMBIE]
    assert leftovers == []
    assert not [s for s in listening_sockets({p.pid for p in psutil.process_iter()}) if s[2] in (18300, 18380)]




def answer_or_error(future) -> int | str:
    try:
        return future.result().status_code
    except httpx.HTTPError as exc:
        return type(exc).__name__


@pytest.mark.parametrize("signum, group", [(signal.SIGTERM, True), (signal.SIGINT, True), (signal.SIGTERM, False)],
                         ids=["SIGTERM-to-group", "Ctrl-C-to-group", "SIGTERM-to-process"])
def test_every_stop_signal_ends_everything_within_budget(tmp_path, shared, signum, group):
    """`timeout`, systemd and Ctrl-C signal the whole process group, Ray's processes included; the server must
    still stop within the budget, answer the requests in flight, and leave nothing behind."""
    server = LocalServer(json.loads((REPO / "models.json").read_text()), tmp_path, port=18310,
                         metrics_port=18390, models=["yolo"]).start()
    server.wait_loaded()
    dog = "data:image/jpeg;base64," + base64.b64encode((shared / "images/dog.jpg").read_bytes()).decode()
    family = {server.process.pid} | {p.pid for p in psutil.Process(server.process.pid).children(recursive=True)}
    with ThreadPoolExecutor(4) as pool:
        in_flight = [pool.submit(httpx.post, server.url + "/yolo/query_once", json={"data": dog},
                                 timeout=30) for _ in range(4)]
        time.sleep(0.3)
        started = time.monotonic()
        code = server.stop(timeout_s=30, signum=signum, group=group)
        took = time.monotonic() - started
        statuses = [answer_or_error(f) for f in in_flight]
    print(f"stop by {signal.Signals(signum).name} to {'group' if group else 'process'}: {took:.1f} s, "
          f"exit {code}, in-flight answers {statuses}")
    assert took <= STOP_BUDGET_S + 1, server.tail()
    assert code == 0, server.tail()
    assert set(statuses) <= {200, 503}, server.tail()
    leftovers = [p for p in psutil.process_iter(["pid"]) if p.info["pid"] in family and p.is_running()
                 and p.status() != psutil.STATUS_ZOMBIE]
    assert leftovers == []
