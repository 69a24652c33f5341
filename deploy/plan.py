"""From a catalog and settings to a deployable plan: which entries Ray Serve runs, which are Docker-only, whether
the cluster can hold them, and the generated values (models, pool sizes, body size).

Every problem names the entry and field (`yolo.specs.gpu: ...`) or the values key (`values.serve.port: ...`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from serve.catalog import CATALOG_APP_PATHS, Catalog, CatalogError, Entry, load_catalog
from deploy import names
from deploy.errors import DeployError
from deploy.quantity import ceil_units, parse_quantity
from deploy.serve_config import hosted_gateway_application, model_application
from deploy import constants as c
from deploy.constants import FIXED_RAY_PORTS, MAX_LABEL, MAX_RELEASE
from deploy.settings import DockerModel, DockerPort, ModelValues, Resources, Settings, settings_from
from deploy.sizing import Capacity, Demand, pods_needed

#: What the catalog app's replica reserves (serve/catalog_app.py: CatalogServer, ray_actor_options; a test checks).
CATALOG_APP_CPUS = 0.05
IMAGE_REF = re.compile(c.IMAGE_REF)
#: JSON and data-URI overhead added to the base64 of the largest accepted image.
BODY_OVERHEAD = 64 * 1024


@dataclass
class Served:
    entry: Entry

    @property
    def gpu(self) -> bool:
        return self.entry.gpus_per_replica > 0


@dataclass
class DockerOnly:
    entry: Entry
    reason: str


@dataclass
class Plan:
    catalog: Catalog
    source: Path
    release: str
    settings: Settings
    served: list[Served] = field(default_factory=list)
    docker_only: list[DockerOnly] = field(default_factory=list)

    @property
    def fullname(self) -> str:
        return names.fullname(self.release, self.settings)

    def entry(self, name: str) -> Entry:
        try:
            return self.catalog.get(name)
        except KeyError:
            raise DeployError([f"--standalone {name!r}: no such entry; known: {', '.join(self.catalog.names)}"])


def exposed_ports(entry: Entry) -> list[tuple[int, str]]:
    """(port, protocol) the entry's container listens on: options.ExposedPorts as the original wrote them (the
    catalog validated them), else `port`."""
    return entry.options.container_ports() or [(entry.port, "TCP")]


def docker_model(docker: DockerOnly, gpu_pool: bool) -> DockerModel:
    """A Docker-only entry as chart values. The original published the container's first exposed port on the host
    as `port` (PortBindings): so does the Service; further exposed ports keep their numbers."""
    entry = docker.entry
    numbers = exposed_ports(entry)
    ports = [DockerPort(name="http" if index == 0 else f"{proto.lower()}-{port}", containerPort=port,
                        servicePort=entry.port if index == 0 else port, protocol=proto)
             for index, (port, proto) in enumerate(numbers)]
    return DockerModel(name=entry.name, reason=docker.reason, image=entry.tag or "", ports=ports,
                       gpu=entry.specs.gpu and gpu_pool)


def ingress_path_problem(path: str) -> str | None:
    """The apiserver's rules for an Exact/Prefix Ingress path."""
    for bad in ("//", "/./", "/../", "%2f", "%2F", "#"):
        if bad in path:
            return f"contains {bad!r}"
    if path.endswith("/..") or path.endswith("/."):
        return "ends with a relative segment"
    return None


def _route_problems(served: list[Served]) -> list[str]:
    problems = []
    owners: dict[str, str] = {p: "the catalog app" for p in CATALOG_APP_PATHS}
    for model in served:
        entry = model.entry
        socket = entry.socket_path
        if entry.http_path == socket or entry.http_path.startswith(socket + "/"):
            problems.append(f"{entry.name}.query.http.route: {entry.query.http.route!r} clashes with the socket.io "
                            f"path {socket} of the same model; pick another route")
        for field_name, path in (("query.http.route", entry.http_path), ("socket path", socket)):
            bad = ingress_path_problem(path)
            if bad:
                problems.append(f"{entry.name}.{field_name}: {path!r} {bad}; an Ingress cannot route it")
            if path in owners and owners[path] != entry.name:
                problems.append(f"{entry.name}.{field_name}: route {path} clashes with {owners[path]}")
            owners.setdefault(path, entry.name)
    return problems


def _docker_problems(entry: Entry, gpu_pool: bool) -> list[str]:
    problems = []
    if not entry.tag:
        problems.append(f"{entry.name}.tag: a Docker-only entry needs its image tag (e.g. runway/{entry.name}:cpu)")
    elif not IMAGE_REF.match(entry.tag):
        problems.append(f"{entry.name}.tag: {entry.tag!r} is not a Docker image reference")
    if not entry.specs.cpu and not entry.specs.gpu:
        problems.append(f"{entry.name}.specs: neither cpu nor gpu is true; the image can run nowhere")
    elif not entry.specs.cpu and not gpu_pool:
        problems.append(f"{entry.name}.specs.gpu: the image needs a GPU (specs.cpu is false) but "
                        f"values.ray.gpuPool.enabled is false")
    return problems


def _settings_problems(release: str, settings: Settings) -> list[str]:
    problems = []
    if not names.is_dns1123_label(release) or len(release) > MAX_RELEASE:
        problems.append(f"release {release!r}: must be a DNS-1123 label of at most {MAX_RELEASE} characters")
    full = names.fullname(release, settings)
    if not names.DNS1035_LABEL.match(full):  # its length limit is the chart's check (runway-models.rayServiceName)
        problems.append(f"values.fullnameOverride: object name {full!r} (from the release name) must be a DNS-1035 "
                        f"label (a letter first)")
    ports = {"serve.port": settings.serve.port, "serve.metricsPort": settings.serve.metricsPort,
             "serve.dashboardPort": settings.serve.dashboardPort}
    if settings.grpc.enabled:
        ports["grpc.port"] = settings.grpc.port
    seen: dict[int, str] = {}
    for key, port in ports.items():
        if port in FIXED_RAY_PORTS:
            problems.append(f"values.{key}: {port} is taken by {FIXED_RAY_PORTS[port]}")
        elif port in seen:
            problems.append(f"values.{key}: {port} is already values.{seen[port]}")
        seen.setdefault(port, key)
    for pool in ("cpuPool", "gpuPool"):
        limits = getattr(settings.ray, pool).resources
        if not (limits.limits.get("cpu") or limits.requests.get("cpu")):
            problems.append(f"values.ray.{pool}.resources.limits.cpu: needed to size the pool")
    return problems


def _capacity(resources: Resources, gpus: int) -> Capacity:
    cpu = resources.limits.get("cpu") or resources.requests.get("cpu") or 0
    memory = resources.limits.get("memory") or resources.requests.get("memory")
    return Capacity(cpus=ceil_units(cpu), gpus=gpus, memory=int(parse_quantity(memory)) if memory else None)


def _demand(entry: Entry) -> Demand:
    res = entry.serving.resources  # type: ignore[union-attr]
    return Demand(owner=entry.name, cpus=res.num_cpus, gpus=entry.gpus_per_replica,
                  memory=(res.memory_mb or 0) * 1024 * 1024)


def _fit_problems(entry: Entry, demand: Demand, capacity: Capacity, pool: str) -> list[str]:
    problems = []
    if demand.cpus > capacity.cpus:
        problems.append(f"{entry.name}.serving.resources.num_cpus: {demand.cpus} does not fit a {pool} pod "
                        f"({capacity.cpus} CPUs, values.ray.{pool}.resources.limits.cpu)")
    if demand.gpus > capacity.gpus:
        problems.append(f"{entry.name}.serving.resources.num_gpus: {demand.gpus} does not fit a {pool} pod "
                        f"({capacity.gpus} GPUs, values.ray.gpuPool.gpusPerPod)")
    if capacity.memory is not None and demand.memory > capacity.memory:
        problems.append(f"{entry.name}.serving.resources.memory_mb: {demand.memory // 2**20} MiB does not fit a "
                        f"{pool} pod (values.ray.{pool}.resources.limits.memory)")
    return problems


def _pools(plan: Plan) -> tuple[dict[str, tuple[int, int]], list[str]]:
    """(min pods, max pods) per pool and the problems (a GPU model and no GPU pool, a replica too big)."""
    ray = plan.settings.ray
    cpu_cap = _capacity(ray.cpuPool.resources, 0)
    gpu_cap = _capacity(ray.gpuPool.resources, ray.gpuPool.gpusPerPod)
    wanted: dict[str, tuple[list[Demand], list[Demand]]] = {"cpuPool": ([], []), "gpuPool": ([], [])}
    problems = []
    cpu_home = "cpuPool" if ray.cpuPool.enabled else ("gpuPool" if ray.gpuPool.enabled else None)
    catalog_app = Demand(owner="catalog app", cpus=CATALOG_APP_CPUS)
    if cpu_home is None:
        problems.append("values.ray.cpuPool.enabled: no worker group is enabled; the catalog app and the models "
                        "need ray.cpuPool or ray.gpuPool")
    else:
        for bucket in wanted[cpu_home]:
            bucket.append(catalog_app)
    for model in plan.served:
        entry, demand = model.entry, _demand(model.entry)
        scaling = entry.serving.autoscaling  # type: ignore[union-attr]
        if model.gpu:
            if not ray.gpuPool.enabled:
                problems.append(f"{entry.name}.specs.gpu: the model asks for a GPU (serving.resources.num_gpus "
                                f"{demand.gpus}) but values.ray.gpuPool.enabled is false; enable the GPU pool or "
                                f"set serving.resources.num_gpus to 0")
                continue
            pool = "gpuPool"
        elif cpu_home is None:
            continue
        else:
            pool = cpu_home
        fit = _fit_problems(entry, demand, gpu_cap if pool == "gpuPool" else cpu_cap, pool)
        if fit:
            problems += fit
            continue
        wanted[pool][0].extend([demand] * scaling.min_replicas)
        wanted[pool][1].extend([demand] * scaling.max_replicas)
    sizes = {pool: (pods_needed(low, cpu_cap if pool == "cpuPool" else gpu_cap),
                    pods_needed(high, cpu_cap if pool == "cpuPool" else gpu_cap))
             for pool, (low, high) in wanted.items()}
    return sizes, problems


def max_body_size(served: list[Served]) -> str | None:
    """ingress-nginx `proxy-body-size` for the largest image any model accepts, base64 in JSON."""
    if not served:
        return None
    largest = max(m.entry.serving.limits.max_bytes for m in served)  # type: ignore[union-attr]
    return f"{math.ceil((math.ceil(largest / 3) * 4 + BODY_OVERHEAD) / 2**20)}m"


def load(catalog_path: str | Path) -> Catalog:
    try:
        return load_catalog(catalog_path)
    except CatalogError as exc:
        raise DeployError(exc.problems, str(catalog_path)) from None


def make_plan(catalog: Catalog, source: Path, release: str, settings: Settings) -> Plan:
    """Classify the entries, check the catalog against the settings, and fill in the generated values."""
    plan = Plan(catalog=catalog, source=Path(source), release=release, settings=settings)
    problems = _settings_problems(release, settings)
    for entry in catalog.entries:
        reason = entry.unservable_reason
        if reason is None:
            plan.served.append(Served(entry))
        else:
            plan.docker_only.append(DockerOnly(entry, reason))
            problems += _docker_problems(entry, settings.ray.gpuPool.enabled)
        standalone = f"{plan.fullname}-{entry.name}"
        if len(standalone) > MAX_LABEL:
            problems.append(f"{entry.name}.name: the stand-alone name {standalone!r} is longer than {MAX_LABEL} "
                            f"characters; shorten the name or the release")
    problems += _route_problems(plan.served)
    sizes, pool_problems = _pools(plan)
    problems += pool_problems
    if problems:
        raise DeployError(problems, str(source))
    plan.settings = settings_from(generated_values(plan, sizes, settings.model_dump(mode="json")))
    return plan


def generated_values(plan: Plan, sizes: dict[str, tuple[int, int]], values: dict) -> dict:
    """`values` with the keys computed from the catalog filled in (what `--target helm-values` adds)."""
    path, gpu = plan.settings.catalog.path, plan.settings.ray.gpuPool.enabled
    models = [ModelValues(name=m.entry.name, httpPath=m.entry.http_path, socketPath=m.entry.socket_path,
                          hostedPath=m.entry.hosted_path, v2Path=m.entry.v2_path, application=model_application(m.entry, path, gpu),
                          hostedGateway=hosted_gateway_application(m.entry, path)) for m in plan.served]
    values["models"] = [m.model_dump(mode="json", exclude_none=True) for m in models]
    values["dockerModels"] = [docker_model(d, gpu).model_dump(mode="json") for d in plan.docker_only]
    for pool, (low, high) in sizes.items():
        values["ray"][pool]["minReplicas"], values["ray"][pool]["maxReplicas"] = low, high
    body = max_body_size(plan.served)
    if body:
        values["ingress"]["maxBodySize"] = body
    return values


GENERATED_KEYS = ["models", "dockerModels", "ray.cpuPool.minReplicas", "ray.cpuPool.maxReplicas",
                  "ray.gpuPool.minReplicas", "ray.gpuPool.maxReplicas", "ingress.maxBodySize"]
