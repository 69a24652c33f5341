"""Ray Serve applications: one per model (ingress, batching and the model in one replica: one hop per
request), plus the catalog app at `/` (GET /, /healthz, /readyz, /metrics, unknown models).

Builders (`build_model_app`, `build_catalog_app`) are what `serve deploy` configs import; the ASGI apps are
built inside each replica (`__serve_build_asgi_app__`), because a socket.io server pickled at import time never
fires its handlers.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from ray import serve

from serve.catalog import Entry, load_catalog
from serve.local_only import bind_replica_grpc_to_loopback
from serve.protocols.body import BodyLimits
from serve.protocols.http import model_http_app
from serve.protocols.socket import SOCKET_PATH, socket_app
from serve.registry import GPU_FAMILIES, GPU_IMAGE_SUFFIX

log = logging.getLogger("ray.serve")


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def choose_device(entry: Entry, gpu_ids: list) -> str:
    """"cuda" when Ray gave this replica a GPU (`gpu_ids`) and its family can use one, else "cpu". A GPU with an
    image whose torch has no CUDA (the CPU build on a GPU node) falls back to CPU, saying which image to run,
    instead of failing to load and keeping /readyz down."""
    if not gpu_ids or entry.serving is None or entry.serving.implementation not in GPU_FAMILIES:
        return "cpu"
    if cuda_available():
        return "cuda"
    log.warning("%s: Ray gave this replica GPU %s but this image's torch has no CUDA; running on CPU. Run GPU "
                "pods on the CUDA build of the image (tag suffix %r: deploy/Dockerfile, chart value "
                "image.gpuTag)", entry.name, gpu_ids, GPU_IMAGE_SUFFIX)
    return "cpu"


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


@serve.deployment(name="ModelServer")
@serve.ingress()
class ModelServer:
    def __init__(self, catalog: str, model: str):
        if os.environ.get("RUNWAY_LOCAL_ONLY") == "1":
            bind_replica_grpc_to_loopback()
        from serve.runner import ModelRunner  # the family's framework is imported only in its replica

        import ray

        loaded = load_catalog(catalog)
        self.entry = loaded.get(model)
        self.runner = ModelRunner(self.entry, loaded.base_dir, choose_device(self.entry, ray.get_gpu_ids()))
        self.runner.load()

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        batching = self.entry.serving.batching
        self.runner.configure(user_config.get("max_batch_size", batching.max_batch_size),
                              user_config.get("batch_wait_timeout_s", batching.batch_wait_timeout_s))

    def __serve_build_asgi_app__(self):
        limits = self.entry.serving.limits
        http = BodyLimits(model_http_app(self.entry, self.runner), limits.max_body_bytes, limits.body_timeout_s,
                          gate=self.runner.admission.check)
        if self.entry.query.socket is None:
            return PathDispatch(http)
        return PathDispatch(http, socket_app(self.entry, self.runner))

    def check_health(self) -> None:
        """Serve calls this every health_check_period_s; a failed load is reported, not fatal (the replica
        keeps answering 503 with the reason), so this only keeps the ready/load-time gauges alive."""
        self.runner.metrics.refresh()

    def model_status(self) -> dict:
        return self.runner.status.model_dump()

    def model_info(self) -> dict:
        return self.runner.info().model_dump()


def gpus_in_cluster() -> bool:
    import ray

    return ray.is_initialized() and ray.cluster_resources().get("GPU", 0) > 0


def model_deployment_options(entry: Entry, use_gpu: bool) -> dict[str, Any]:
    """Serve deployment options from the catalog's serving section (also used by the manifest generator).
    GPUs are asked for only when the entry wants one (`specs.gpu`) and the cluster has them."""
    serving = entry.serving
    scaling = serving.autoscaling
    actor: dict[str, Any] = {"num_cpus": serving.resources.num_cpus}
    if use_gpu and entry.gpus_per_replica:
        actor["num_gpus"] = entry.gpus_per_replica
    if serving.resources.memory_mb:
        actor["memory"] = serving.resources.memory_mb * 1024 * 1024
    options: dict[str, Any] = {
        "max_ongoing_requests": serving.max_ongoing_requests + 8,  # headroom for GET / and status calls
        "max_queued_requests": serving.max_queued_requests,
        "backpressure_config": {"status_code": 503, "retry_after_s": 1},  # the proxy's own overload answer
        "ray_actor_options": actor,
        "user_config": {"max_batch_size": serving.batching.max_batch_size,
                        "batch_wait_timeout_s": serving.batching.batch_wait_timeout_s},
        "health_check_period_s": 5,  # also refreshes the gauges (see check_health)
    }
    if scaling.min_replicas == scaling.max_replicas:
        options["num_replicas"] = scaling.min_replicas
    else:
        options["autoscaling_config"] = {
            "min_replicas": scaling.min_replicas, "max_replicas": scaling.max_replicas,
            "initial_replicas": scaling.initial_replicas if scaling.initial_replicas is not None
            else max(1, scaling.min_replicas),
            "target_ongoing_requests": scaling.target_ongoing_requests,
            "upscale_delay_s": scaling.upscale_delay_s, "downscale_delay_s": scaling.downscale_delay_s,
        }
    return options


def build_model_app(args: dict[str, Any]) -> serve.Application:
    """Serve application builder: args {"catalog": path, "model": name, "use_gpu": bool (default: GPUs in
    the cluster)}. A Serve config's deployment overrides (the generator's) take precedence over these."""
    catalog = load_catalog(args["catalog"])
    entry = catalog.get(args["model"])
    if entry.serving is None:
        raise ValueError(f"{entry.name} has no serving section: it is a Docker-only entry")
    use_gpu = args["use_gpu"] if "use_gpu" in args else gpus_in_cluster()
    return ModelServer.options(**model_deployment_options(entry, use_gpu)).bind(str(args["catalog"]), entry.name)


def build_catalog_app(args: dict[str, Any]) -> serve.Application:
    """Serve application builder: args {"catalog": path, "metrics_url": Ray's metrics page (optional),
    "models": the names deployed as model apps (default: every servable entry)}."""
    from serve.catalog_app import CatalogServer

    return CatalogServer.bind(str(args["catalog"]), args.get("metrics_url"), args.get("models"))


