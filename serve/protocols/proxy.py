"""What runs inside Ray Serve's proxy. Ray imports `middlewares` from the module path in
RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH (PROXY_CALLBACK_ENV), which `runway-models serve` and the chart's Ray
containers set, and wraps its HTTP/WebSocket app in them: JSON for the proxy's own failures
(serve/protocols/proxy_errors.py) and newest-frame-wins for socket.io streams before they reach a replica
(serve/protocols/proxy_frames.py). Nothing here may import torch or TensorFlow: the proxy stays small."""

from __future__ import annotations

PROXY_CALLBACK_ENV = "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"
PROXY_CALLBACK = "serve.protocols.proxy:middlewares"


def middlewares() -> list:
    from starlette.middleware import Middleware

    from serve.protocols.proxy_errors import ProxyErrors
    from serve.protocols.proxy_frames import FrameGate

    return [Middleware(ProxyErrors), Middleware(FrameGate)]
