"""Keep a local server on loopback. Ray Serve replicas bind their inter-deployment gRPC server on `[::]:0`
whatever the node address (`ray/serve/_private/replica.py`), and Serve's gRPC proxy binds `[::]:<grpc port>`
(`ray/serve/_private/grpc_util.py`); in local mode we rewrite those bind addresses to 127.0.0.1 before the
servers start: in the replica's constructor, and in the proxy's HTTP callback (which Serve calls before it starts
the gRPC server)."""

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
