"""Keep a local server on loopback. Ray Serve replicas bind their inter-deployment gRPC server on `[::]:0`
whatever the node address (`ray/serve/_private/replica.py`), and Serve's gRPC proxy binds `[::]:<grpc port>`
(`ray/serve/_private/grpc_util.py`); in local mode we rewrite those bind addresses to 127.0.0.1 before the
servers start: in the replica's constructor, and in the proxy's HTTP callback (which Serve calls before it starts
the gRPC server)."""

from __future__ import annotations


def bind_replica_grpc_to_loopback() -> None:
    from ray.serve._private import replica

    original = replica.add_port_to_grpc_server
    if getattr(original, "_runway_loopback", False):
        return

    def loopback(server, address: str):
        host, _, port = address.rpartition(":")
        return original(server, f"127.0.0.1:{port}" if host in ("[::]", "0.0.0.0", "") else address)

    loopback._runway_loopback = True
    replica.add_port_to_grpc_server = loopback


def bind_proxy_grpc_to_loopback() -> None:
    from ray.serve._private import default_impl

    original = default_impl.add_grpc_address
    if getattr(original, "_runway_loopback", False):
        return

    def loopback(server, address: str):
        host, _, port = address.rpartition(":")
        return original(server, f"127.0.0.1:{port}" if host in ("[::]", "0.0.0.0", "") else address)

    loopback._runway_loopback = True
    default_impl.add_grpc_address = loopback
