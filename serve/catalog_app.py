"""The catalog app at `/`: GET / (every model and its status; the browser playground for browsers), /healthz,
/readyz, /metrics, GET /<model> for entries Ray does not run, and a JSON 404 for unknown models. Served models
answer their own /<name> routes; this app only sees what no model app claimed.

No `from __future__ import annotations` here: Serve ships this class to its replica by value, without the
module's globals, so FastAPI could not resolve string annotations such as `Request` there."""

import asyncio
import os
import urllib.request

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from ray import serve

from serve import __version__
from serve.catalog import HEALTH_PATH, METRICS_PATH, READY_PATH, ROOT_PATH, load_catalog
from serve.describe import availability, describe
from serve.errors import ModelUnavailable, UnknownModel
from serve.local_only import bind_replica_grpc_to_loopback
from serve.playground.web import install_playground, page, wants_html
from serve.progress import read_progress
from serve.protocols.body import BodyLimits
from serve.protocols.http import install_error_handlers
from serve.protocols.v2_grpc import GRPCServerWide, importable_messages
from serve.protocols.v2_http import error_body as v2_error_body, is_v2_path, server_router as v2_server_router, \
    v2_error
from serve.protocols.types import ModelInfo, ModelStatus, Readiness

STATUS_TIMEOUT_S = 2.0
#: Model states /readyz counts as ready: an asleep model wakes on its next request.
READY_STATES = ("ready", "not_available", "asleep")


@serve.deployment(name="CatalogServer", ray_actor_options={"num_cpus": 0.05}, max_ongoing_requests=64)
@serve.ingress()
class CatalogServer(GRPCServerWide):
    def __init__(self, catalog: str, metrics_url: str | None = None, deployed: list[str] | None = None):
        if os.environ.get("RUNWAY_LOCAL_ONLY") == "1":
            bind_replica_grpc_to_loopback()
        importable_messages()  # gRPC requests arrive pickled
        self.catalog = load_catalog(catalog)
        self.metrics_url = metrics_url
        self.deployed = set(deployed) if deployed is not None else None

    async def serve_apps(self) -> dict:
        """Serve's view of every application, asked once per request (it is a call to the controller)."""
        try:
            return (await asyncio.to_thread(serve.status)).applications
        except Exception:
            return {}

    async def status_of(self, name: str, apps: dict) -> ModelStatus:
        """Ask the model's replica itself; before it answers, report Serve's view of the application."""
        entry = self.catalog.get(name)
        unavailable = availability(entry)
        if unavailable:
            return unavailable
        if self.deployed is not None and name not in self.deployed:
            return ModelStatus(state="not_available", detail="not deployed by this server (serve --models)")
        app = apps.get(name)
        state = app.status if app else None
        replicas = sum(d.replica_states.get("RUNNING", 0) for d in app.deployments.values()) if app else None
        if state != "RUNNING":
            failed = state in ("DEPLOY_FAILED", "UNHEALTHY")
            serve_state = f"Serve application state: {getattr(state, 'value', state) or 'not deployed'}"
            progress = None if failed else await asyncio.to_thread(read_progress, name)
            return ModelStatus(state="failed" if failed else "loading", progress=progress,
                               detail=f"{progress.text()} ({serve_state})" if progress else serve_state)
        if replicas == 0 and entry.serving.autoscaling.sleeps:
            # Asking the replica would wake it (and probes would keep it awake): report it asleep instead.
            return ModelStatus(state="asleep", replicas=0,
                               detail="scaled to zero after idling; the next request to it wakes it")
        try:
            handle = serve.get_app_handle(name)
            raw = await asyncio.wait_for(handle.model_status.remote(), STATUS_TIMEOUT_S)
            return ModelStatus.model_validate({**raw, "replicas": replicas})
        except Exception as exc:
            return ModelStatus(state="loading", detail=f"replica did not answer: {type(exc).__name__}")

    def served(self) -> list[str]:
        names = [n for n in self.catalog.names if availability(self.catalog.get(n)) is None]
        return [n for n in names if self.deployed is None or n in self.deployed]

    async def all_ready(self) -> bool:
        """The v2 server readiness: every model this server deploys has loaded, save those `not_available` (weights
        left to users to fetch, e.g. densecap's): like /readyz, a model that cannot load until someone acts holds
        no server up. The model's own v2 readiness stays false."""
        apps = await self.serve_apps()
        statuses = await asyncio.gather(*(self.status_of(n, apps) for n in self.served()))
        return all(s.state in ("ready", "not_available") for s in statuses)

    async def v2_forward(self, name: str, request: Request) -> Response:
        """A v2 model route received at /v2/...: answered by the model's own replica (one more hop than its
        /<model>/v2/... address)."""
        if name not in self.served():
            known = self.catalog.names
            error = UnknownModel(f"no model named {name!r}; known: {', '.join(known)}") if name not in known else \
                ModelUnavailable(f"model {name} is not served here: {(await self.status_of(name, {})).detail}")
            return v2_error(error)
        handle = serve.get_app_handle(name)
        status, headers, body = await handle.v2_http.remote(request.method, request.url.path, request.headers.raw,
                                                            await request.body())
        kept = {k.decode(): v.decode() for k, v in headers if k.lower() != b"content-length"}
        return Response(body, status_code=status, headers=kept)

    async def info_of(self, name: str, apps: dict) -> ModelInfo:
        status = await self.status_of(name, apps)
        if status.state == "ready":
            try:
                raw = await asyncio.wait_for(serve.get_app_handle(name).model_info.remote(), STATUS_TIMEOUT_S)
                return ModelInfo.model_validate({**raw, "status": status})
            except Exception:
                pass
        return describe(self.catalog.get(name), status)

    def __serve_build_asgi_app__(self):
        app = FastAPI(title="runway-models", version=__version__,
                      description="Creative-ML vision models from models.json, served by Ray Serve")
        install_error_handlers(app)
        install_playground(app)
        names = self.catalog.names

        @app.get(ROOT_PATH, response_model=list[ModelInfo], summary="The catalog: every model and its status",
                 responses={200: {"content": {"text/html": {}},
                                  "description": "JSON; the browser playground when Accept prefers text/html"}})
        async def catalog(request: Request, response: Response) -> list[ModelInfo] | HTMLResponse:
            if wants_html(request.headers.get("accept")):
                return page()
            response.headers["Vary"] = "Accept"
            apps = await self.serve_apps()
            return list(await asyncio.gather(*(self.info_of(n, apps) for n in names)))

        @app.get(HEALTH_PATH, summary="The server is up")
        async def healthz() -> dict:
            return {"status": "ok"}

        @app.get(READY_PATH, response_model=Readiness, responses={503: {"model": Readiness}},
                 summary="200 once every available model has loaded")
        async def readyz():
            apps = await self.serve_apps()
            statuses = dict(zip(names, await asyncio.gather(*(self.status_of(n, apps) for n in names))))
            ready = all(s.state in READY_STATES for s in statuses.values())
            body = Readiness(ready=ready, models=statuses).model_dump()
            return JSONResponse(body, status_code=200 if ready else 503)

        @app.get(METRICS_PATH, response_class=PlainTextResponse,
                 summary="Prometheus metrics: Ray's page (ray_serve_* and runway_*) relayed")
        async def metrics() -> PlainTextResponse:
            if not self.metrics_url:
                raise ModelUnavailable("no metrics export URL configured")
            text = await asyncio.to_thread(_fetch, self.metrics_url)
            return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

        # Defined in v2_http: this class is pickled by value, and its closures' string annotations (Request) would
        # not resolve there.
        app.include_router(v2_server_router(self.all_ready, self.v2_forward), include_in_schema=False)

        @app.get("/{name}", response_model=ModelInfo, summary="One model's description and I/O schema")
        async def model(name: str) -> ModelInfo:
            if name not in names:
                raise UnknownModel(f"no model named {name!r}; known: {', '.join(names)}")
            return await self.info_of(name, await self.serve_apps())

        @app.api_route("/{name}/{rest:path}", methods=["GET", "POST", "PUT"], include_in_schema=False)
        async def not_served(name: str, rest: str):
            if name not in names:
                raise UnknownModel(f"no model named {name!r}; known: {', '.join(names)}")
            status = await self.status_of(name, await self.serve_apps())
            raise ModelUnavailable(f"model {name} is {status.state}: {status.detail}")

        limits = [self.catalog.get(n).serving.limits for n in self.served()]
        if not limits:
            return app
        # v2 bodies pass through here on their way to a model: the largest model limit bounds them here, the
        # model's own replica holds them to its limit again.
        return BodyLimits(app, max(l.max_body_bytes for l in limits), max(l.body_timeout_s for l in limits),
                          error_body=lambda scope, error: v2_error_body(error) if is_v2_path(scope) else None)


def _fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()
