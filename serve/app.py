"""Ray Serve applications: one per model (ingress, batching and the model in one replica: one hop per
request), plus the catalog app at `/` (GET /, /healthz, /readyz, /metrics, unknown models).

Builders (`build_model_app`, `build_catalog_app`) are what `serve deploy` configs import; the ASGI apps are
built inside each replica (`__serve_build_asgi_app__`, from `serve/protocols/asgi.py`), because a socket.io server pickled at import time never
fires its handlers.
"""

from __future__ import annotations

import logging
import os
from functools import partial
from typing import Any

from ray import serve

from serve.catalog import Entry, load_catalog
from serve.device import cuda_available
from serve.errors import ServeError
from serve.front import haproxy_front, replica_middlewares
from serve.local_only import bind_replica_grpc_to_loopback
from serve.progress import ProgressReporter
from serve.protocols.asgi import model_asgi_app
from serve.protocols.hosted import (ReplicaAnswer, ReplicaBackend, SleepingBackend, hosted_overload, hosted_router,
                                    is_hosted_path)
from serve.protocols.hosted_types import HostedQuery
from serve.protocols.http import install_error_handlers
from serve.protocols.v2 import V2Model
from serve.protocols.v2_grpc import GRPCInference, importable_messages
from serve.protocols.v2_http import call_asgi
from serve.registry import GPU_FAMILIES, GPU_IMAGE_SUFFIX
from serve.tokens import TokenStore

log = logging.getLogger("ray.serve")
#: The Serve application of a sleeping model's hosted gateway: a dot, which model names cannot hold.
HOSTED_GATEWAY_SUFFIX = ".v1"


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


@serve.deployment(name="ModelServer")
@serve.ingress()
class ModelServer(GRPCInference):
    def __init__(self, catalog: str, model: str):
        if os.environ.get("RUNWAY_LOCAL_ONLY") == "1":
            bind_replica_grpc_to_loopback()
        from serve.runner import ModelRunner, build_model  # the family's framework is imported only in its replica

        import ray

        importable_messages()  # gRPC requests arrive pickled
        loaded = load_catalog(catalog)
        self.entry = loaded.get(model)
        device = choose_device(self.entry, ray.get_gpu_ids())
        progress = ProgressReporter(model)  # Serve calls nothing here until this returns: report through the KV
        self.runner = ModelRunner(self.entry, partial(build_model, self.entry, loaded.base_dir, device, progress))
        self.tokens = TokenStore.from_environment([model])
        self.hosted = ReplicaBackend(self.entry, self.runner)
        try:
            self.runner.load(progress)
        finally:
            progress.done()
        self.v2 = V2Model(self.entry, self.runner)

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        batching = self.entry.serving.batching
        self.runner.configure(user_config.get("max_batch_size", batching.max_batch_size),
                              user_config.get("batch_wait_timeout_s", batching.batch_wait_timeout_s))

    def original_routes_guard(self):
        """The token check on the catalog's own routes, when the operator asked for it."""
        hosted = self.entry.serving.hosted
        if not hosted.protect_original_routes:
            return None
        return lambda authorization: self.tokens.check(self.entry.name, hosted.public, authorization)

    def admit(self, scope) -> None:
        """Before a body is read: overload is 503 on the original routes, 429 on the hosted ones."""
        try:
            self.runner.admission.check()
        except ServeError as error:
            raise hosted_overload(error) if is_hosted_path(scope) else error

    def __serve_build_asgi_app__(self):
        self.asgi = model_asgi_app(self.entry, self.runner, self.v2,
                                   routers=(hosted_router(self.entry, self.tokens, self.hosted),),
                                   guard=self.original_routes_guard(), gate=self.admit, drain_refused=haproxy_front())
        return replica_middlewares(self.asgi)

    async def v2_http(self, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes):
        """A v2 request the catalog app received at `/v2/...`, answered by this replica's own routes."""
        return await call_asgi(self.asgi, self.entry.route_prefix, method, path, headers, body)

    # The hosted gateway of a sleeping model calls these through a handle (authorized there already).
    async def hosted_root(self) -> dict:
        async def root() -> dict:
            return (await self.hosted.root()).model_dump()

        return (await ReplicaAnswer.of(root())).model_dump()

    async def hosted_info(self) -> dict:
        return (await self.hosted.info()).model_dump()

    async def hosted_query(self, body: dict) -> dict:
        """Admission (429 on overload) happens in the runner: a handle call has no body gate."""
        return (await ReplicaAnswer.of(self.hosted.query(HostedQuery.model_validate(body)))).model_dump()

    def check_health(self) -> None:
        """Serve calls this every health_check_period_s; a failed load is reported, not fatal (the replica
        keeps answering 503 with the reason), so this only keeps the ready/load-time gauges alive."""
        self.runner.metrics.refresh()

    def model_status(self) -> dict:
        return self.runner.status.model_dump()

    def model_info(self) -> dict:
        return self.runner.info().model_dump()


@serve.deployment(name="HostedGateway", ray_actor_options={"num_cpus": 0.05}, max_ongoing_requests=64)
@serve.ingress()
class HostedGateway:
    """Always on, for a model that scales to zero: answers `/<name>/v1/` at once (`starting` while the model
    sleeps or wakes) and passes info and query to the model through its handle, which wakes it."""

    def __init__(self, catalog: str, model: str):
        if os.environ.get("RUNWAY_LOCAL_ONLY") == "1":
            bind_replica_grpc_to_loopback()
        self.entry = load_catalog(catalog).get(model)
        self.tokens = TokenStore.from_environment([model])

    def __serve_build_asgi_app__(self):
        from fastapi import FastAPI

        app = FastAPI(title=f"runway-models: {self.entry.name} (hosted)")
        install_error_handlers(app)
        app.include_router(hosted_router(self.entry, self.tokens, SleepingBackend(self.entry.name), prefix=""))
        return app


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
        if scaling.downscale_to_zero_delay_s is not None:
            options["autoscaling_config"]["downscale_to_zero_delay_s"] = scaling.downscale_to_zero_delay_s
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


def build_hosted_gateway_app(args: dict[str, Any]) -> serve.Application:
    """Serve application builder for the hosted gateway of a model that sleeps (`autoscaling.min_replicas` 0),
    deployed at `/<name>/v1` as `<name>.v1`: args {"catalog": path, "model": name}."""
    return HostedGateway.bind(str(args["catalog"]), args["model"])


def build_catalog_app(args: dict[str, Any]) -> serve.Application:
    """Serve application builder: args {"catalog": path, "metrics_url": Ray's metrics page (optional),
    "models": the names deployed as model apps (default: every servable entry)}."""
    from serve.catalog_app import CatalogServer

    return CatalogServer.bind(str(args["catalog"]), args.get("metrics_url"), args.get("models"))


