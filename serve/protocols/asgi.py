"""One model's ASGI app, built from its runner: FastAPI behind the body limits (and the admission gate), and the
socket.io server beside it under `/socket.io`.

The Serve replica (`serve/app.py`) serves exactly this app; tests serve the same app in process (an ASGI test
client, or uvicorn on a free port for a real socket.io client), so HTTP and socket.io are tested without Ray.
"""

from __future__ import annotations

from serve.catalog import Entry
from serve.protocols.body import BodyLimits
from serve.protocols.http import model_http_app
from serve.protocols.socket import SOCKET_PATH, socket_app
from serve.protocols.v2_http import error_body as v2_error_body, is_v2_path, model_router


class PathDispatch:
    """Send `/<name>/socket.io/...` to engine.io and everything else to FastAPI. Serve passes the full path
    with the route prefix as `root_path`, which engine.io's own path check does not understand; and
    `GET /<name>` (no slash) is answered by the app's `/` route instead of a redirect."""

    def __init__(self, http_app, socket_app=None):
        self.http_app, self.socket_app = http_app, socket_app

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            path, root = scope.get("path", ""), scope.get("root_path", "")
            local = path[len(root):] if root and path.startswith(root) else path
            if self.socket_app and (local == SOCKET_PATH or local.startswith(SOCKET_PATH + "/")):
                return await self.socket_app(scope, receive, send)
            if local == "":
                scope = {**scope, "path": path + "/", "raw_path": (path + "/").encode()}
        return await self.http_app(scope, receive, send)


def model_asgi_app(entry: Entry, runner, v2=None, routers: tuple = (), guard=None, gate=None,
                   drain_refused: bool = False) -> PathDispatch:
    """The whole app of one model replica. `runner` is a `serve.runner.ModelRunner`; `v2`, a
    `serve.protocols.v2.V2Model`, adds the Open Inference Protocol routes (whose errors keep the v2 shape);
    `routers` other protocols' routes (the hosted /v1); `guard` checks tokens on the original routes and socket.io;
    `gate(scope)` admits or refuses a request before its body is read (default: the runner's admission);
    `drain_refused`: clients reach this app directly (no proxy holds their bodies), see `BodyLimits`."""
    limits = entry.serving.limits
    routers = (*routers, model_router(v2)) if v2 is not None else tuple(routers)
    http = BodyLimits(model_http_app(entry, runner, routers, guard), limits.max_body_bytes, limits.body_timeout_s,
                      gate=gate or (lambda scope: runner.admission.check()),
                      error_body=lambda scope, error: v2_error_body(error) if is_v2_path(scope) else None,
                      drain_refused=drain_refused)
    if entry.query.socket is None:
        return PathDispatch(http)
    return PathDispatch(http, socket_app(entry, runner, guard))
