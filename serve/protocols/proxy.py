"""What runs inside Ray Serve's proxy. Ray imports `middlewares` from the module path in
RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH (PROXY_CALLBACK_ENV), which `runway-models serve` and the chart's Ray
containers set, and wraps its HTTP/WebSocket app in them: JSON for the proxy's own failures
(serve/protocols/proxy_errors.py) and newest-frame-wins for socket.io streams before they reach a replica
(serve/protocols/proxy_frames.py). Nothing here may import torch or TensorFlow: the proxy stays small."""

from __future__ import annotations

import os

PROXY_CALLBACK_ENV = "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"
PROXY_CALLBACK = "serve.protocols.proxy:middlewares"


def middlewares() -> list:
    """In local mode this also keeps the proxy's gRPC server on loopback: the one hook of ours that runs in the
    proxy before it starts that server (serve/local_only.py)."""
    from starlette.middleware import Middleware

    if os.environ.get("RUNWAY_LOCAL_ONLY") == "1":
        from serve.local_only import bind_proxy_grpc_to_loopback

        bind_proxy_grpc_to_loopback()

    from serve.protocols.proxy_errors import ProxyErrors
    from serve.protocols.proxy_frames import FrameGate

    return [Middleware(ProxyErrors), Middleware(FrameGate)]
