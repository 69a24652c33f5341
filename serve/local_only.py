"""Keep a local server on loopback. Ray Serve replicas bind their inter-deployment gRPC server on `[::]:0`
whatever the node address (`ray/serve/_private/replica.py`), and Serve's gRPC proxy binds `[::]:<grpc port>`
(`ray/serve/_private/grpc_util.py`); in local mode we rewrite those bind addresses to 127.0.0.1 before the
servers start: in the replica's constructor, and in the proxy's HTTP callback (which Serve calls before it starts
the gRPC server). With the HAProxy front (serve/front.py), HAProxy's stats and Prometheus frontends too: in the
config template, from a Ray worker setup hook."""

from __future__ import annotations


def _rebind_to_loopback(module, name: str) -> None:
    """Wrap `module.name(server, address)` so that an all-interfaces address becomes 127.0.0.1 (once)."""
    original = getattr(module, name)
    if getattr(original, "_runway_loopback", False):
        return

    def loopback(server, address: str):
        host, _, port = address.rpartition(":")
        return original(server, f"127.0.0.1:{port}" if host in ("[::]", "0.0.0.0", "") else address)

    loopback._runway_loopback = True
    setattr(module, name, loopback)


def bind_replica_grpc_to_loopback() -> None:
    from ray.serve._private import replica

    _rebind_to_loopback(replica, "add_port_to_grpc_server")


def bind_proxy_grpc_to_loopback() -> None:
    from ray.serve._private import default_impl

    _rebind_to_loopback(default_impl, "add_grpc_address")


# Ray Serve's HAProxy front (serve/front.py) renders its stats and Prometheus frontends with all-interfaces binds
# (`ray/serve/_private/haproxy_templates.py`); its HTTP frontend follows http_options.host.
_HAPROXY_BINDS = {"bind :{{ config.metrics_port }}": "bind 127.0.0.1:{{ config.metrics_port }}",
                  "bind *:{{ config.stats_port }}": "bind 127.0.0.1:{{ config.stats_port }}"}


def bind_haproxy_to_loopback() -> None:
    """Rewrite those binds to 127.0.0.1 in the process that renders the config (Serve's HAProxyManager actor).
    When Ray's template no longer has them, fail loudly rather than listen on every interface."""
    from ray.serve._private import haproxy

    template = haproxy.HAPROXY_CONFIG_TEMPLATE
    for everywhere, loopback in _HAPROXY_BINDS.items():
        if everywhere not in template and loopback not in template:
            raise RuntimeError(f"Ray's HAProxy template changed: cannot keep {everywhere!r} on loopback")
        template = template.replace(everywhere, loopback)
    haproxy.HAPROXY_CONFIG_TEMPLATE = template


def setup_haproxy_worker() -> None:
    """Ray's worker_process_setup_hook in local mode with the HAProxy front (serve/local.py): runs in every Ray
    worker process, Serve's HAProxyManager among them."""
    from serve.front import answer_haproxy_errors_in_json

    bind_haproxy_to_loopback()
    answer_haproxy_errors_in_json()
