"""`runway-models serve` as a user runs it: ready, loopback only (Ray's own ports included), and SIGTERM
shuts everything down: no Ray process left, the ports free again."""

from __future__ import annotations

import json

import httpx
import psutil
import pytest

from loadtest.servers import REPO, LocalServer

pytestmark = pytest.mark.slow


def listening_sockets(pids: set[int]) -> list[tuple[int, str, int]]:
    return [(c.pid, c.laddr.ip, c.laddr.port) for c in psutil.net_connections("inet")
            if c.status == psutil.CONN_LISTEN and c.pid in pids]


def test_serve_is_ready_loopback_only_and_stops_cleanly(tmp_path, shared):
    server = LocalServer(json.loads((REPO / "models.json").read_text()), tmp_path, port=18300,
                         metrics_port=18380, models=["yolo"]).start()
    try:
        ready = server.wait_loaded()
        assert ready["ready"] is True and ready["models"]["yolo"]["state"] == "ready"
        assert httpx.get(server.url + "/readyz").status_code == 200
        family = {server.process.pid} | {p.pid for p in psutil.Process(server.process.pid).children(recursive=True)}
        sockets = listening_sockets(family)
        ports = {port for _, _, port in sockets}
        assert {18300, 18380} <= ports
        # every listener of the server and of Ray (GCS, raylet, agents, replicas' gRPC) is on loopback
        assert all(ip in ("127.0.0.1", "::1", "::ffff:127.0.0.1") for _, ip, _ in sockets), sockets
    finally:
        code = server.stop()
    assert code == 0, server.tail()
    leftovers = [p for p in psutil.process_iter(["pid", "name"]) if p.info["pid"] in family and p.is_running()
                 and p.status() != psutil.STATUS_ZOMBIE]
    assert leftovers == []
    assert not [s for s in listening_sockets({p.pid for p in psutil.process_iter()}) if s[2] in (18300, 18380)]


