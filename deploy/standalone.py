"""A stand-alone app for one catalog entry: a Deployment + Service (+ HPA, PDB where they make sense) + policy.

- An entry Ray Serve runs: the runway-models image with a single-node Ray and Serve inside the pod, serving the
  catalog app and this model from a ConfigMap holding a one-entry catalog and its Serve config, one Serve replica
  per pod. A CPU model's pods scale with a HorizontalPodAutoscaler between the entry's min and max replicas. A GPU
  model runs the release's GPU image with a fixed count of min_replicas pods, replaced with `Recreate`: a rolling
  update or a CPU-driven HPA would each claim another whole GPU.
- A Docker-only entry: the objects the release itself deploys for it (the chart's docker-models.yaml: its own
  image, `port` and `options.ExposedPorts`, on a GPU node when `specs` asks for one).
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import yaml

from deploy.errors import DeployError
from deploy.plan import Plan
from deploy.quantity import parse_quantity
from serve.catalog import HEALTH_PATH, READY_PATH, ROOT_PATH, Entry

#: The chart's template for Docker-only entries, and the label naming an object's entry.
DOCKER_TEMPLATE = "docker-models.yaml"
#: The release's NetworkPolicy, and the names of the Ray proxies' container ports (the chart's proxyPorts).
POLICY_TEMPLATE = "networkpolicy.yaml"
PROXY_PORT_NAMES = ("serve", "grpc")
MODEL_LABEL = "runway-models/model"
#: Who manages stand-alone objects (`kubectl apply` of generated files, not Helm).
GENERATOR = "runway-models-generate"
CONFIG_DIR = "/etc/runway-models"
SERVE_SCRIPT = "\n".join([
    "set -euo pipefail",
    "# Ray's control plane requires this token (RAY_AUTH_MODE=token); it lives under $HOME on the emptyDir.",
    "ray get-auth-token --generate > /dev/null",
    "ray start --head --disable-usage-stats --dashboard-host=127.0.0.1 --metrics-export-port={metrics} "
    "--object-store-memory={object_store}",
    f"exec serve run --address=auto {CONFIG_DIR}/serve-config.yaml",
])
#: /dev/shm above the object store: Ray moves the store to disk when /dev/shm is smaller than it, and its own
#: advice for a container's shm is 1.1 x the store.
SHM_HEADROOM = 1.1


@dataclass
class ReleasePod:
    """What a stand-alone pod takes from the release the chart rendered: names, labels, and the Ray head pod's
    image, environment, volumes and security (the chart's helpers lay those out; nothing is rebuilt here)."""

    name: str
    labels: dict[str, str]
    pod: dict[str, Any]
    container: dict[str, Any]
    serve_config: dict[str, Any]
    gpu_image: str | None  # the GPU worker group's image (the CUDA build); None: the release has no GPU group
    #: Who the release's NetworkPolicy admits to its proxies' ports from outside (the chart's servePeers: the
    #: ingress controller with the Ingress, the Gateway with the HTTPRoute; empty with neither). None: the release
    #: renders no NetworkPolicy (networkPolicy.enabled false).
    serve_peers: list[dict[str, Any]] | None

    @classmethod
    def of(cls, chart: dict[str, list[dict[str, Any]]]) -> ReleasePod:
        rayservice = next(o for o in chart["rayservice.yaml"] if o["kind"] == "RayService")
        cluster = rayservice["spec"]["rayClusterConfig"]
        pod = cluster["headGroupSpec"]["template"]["spec"]
        gpu_images = [g["template"]["spec"]["containers"][0]["image"] for g in cluster.get("workerGroupSpecs", [])
                      if g["groupName"] == "gpu"]
        container = pod["containers"][0]
        return cls(name=rayservice["metadata"]["name"], labels=rayservice["metadata"]["labels"], pod=pod,
                   container=container, serve_config=yaml.safe_load(rayservice["spec"]["serveConfigV2"]),
                   gpu_image=gpu_images[0] if gpu_images else None, serve_peers=_serve_peers(chart, container))

    def name_of(self, entry: Entry) -> str:
        return f"{self.name}-{entry.name}"

    def selector(self, entry: Entry) -> dict[str, str]:
        # A separate instance label keeps these pods out of the RayService's Services and policies.
        return {"app.kubernetes.io/name": self.labels["app.kubernetes.io/name"],
                "app.kubernetes.io/instance": self.name_of(entry)}

    def labels_of(self, entry: Entry) -> dict[str, str]:
        return {**self.labels, **self.selector(entry), "app.kubernetes.io/managed-by": GENERATOR,
                "app.kubernetes.io/component": "standalone", MODEL_LABEL: entry.name}

    def meta(self, entry: Entry) -> dict[str, Any]:
        return {"name": self.name_of(entry), "labels": self.labels_of(entry)}


def _serve_peers(chart: dict[str, list[dict[str, Any]]], head: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The peers of the release NetworkPolicy's rule for exactly its proxies' ports (the head's `serve` and `grpc`
    container ports, the chart's proxyPorts): what the chart's servePeers helper rendered. The operator's rule
    also names the Serve port, but beside the dashboard's; the metrics rule names only the metrics port."""
    policies = [o for o in chart.get(POLICY_TEMPLATE, []) if o["kind"] == "NetworkPolicy"]
    if not policies:
        return None
    proxy_ports = {p["containerPort"] for p in head["ports"] if p["name"] in PROXY_PORT_NAMES}
    rules = [r for r in policies[0]["spec"].get("ingress", [])
             if {p["port"] for p in r.get("ports", [])} == proxy_ports]
    return rules[0]["from"] if rules else []


def _gpu_scheduling(plan: Plan, gpus: int, resources: dict[str, Any]) -> dict[str, Any]:
    pool = plan.settings.ray.gpuPool
    resources.setdefault("limits", {})[pool.gpuResource] = gpus
    scheduling: dict[str, Any] = {}
    if pool.nodeSelector:
        scheduling["nodeSelector"] = dict(pool.nodeSelector)
    if pool.tolerations:
        scheduling["tolerations"] = [dict(t) for t in pool.tolerations]
    return scheduling


def object_store_sizes(resources: dict[str, Any], share: float) -> tuple[int, str]:
    """(Ray's object store in bytes, the /dev/shm size limit) from the pod's memory limit: Ray's default store is a
    share of the memory it sees, and /dev/shm must hold it or Ray puts the store on disk."""
    memory = (resources.get("limits") or {}).get("memory") or (resources.get("requests") or {}).get("memory")
    if memory is None:
        raise DeployError(["values.standalone.resources.limits.memory: needed to size Ray's object store and "
                           "/dev/shm of a stand-alone pod"])
    store = int(parse_quantity(memory) * Decimal(str(share)))
    return store, f"{math.ceil(store * SHM_HEADROOM / 2**20)}Mi"


def standalone_serve_config(entry: Entry, release_config: dict[str, Any]) -> dict[str, Any]:
    """The release's Serve config (as the chart renders it) narrowed to the catalog app and this model, reading
    the one-entry catalog of the ConfigMap, one replica per pod (pods scale with the HPA instead)."""
    config = copy.deepcopy(release_config)
    config["applications"] = [app for app in config["applications"]
                              if app["route_prefix"] == ROOT_PATH or app["name"] == entry.name]
    for app in config["applications"]:
        app["args"]["catalog"] = f"{CONFIG_DIR}/models.json"
        for deployment in app.get("deployments", []):
            deployment.pop("autoscaling_config", None)
            deployment["num_replicas"] = 1
    return config


def _service(release: ReleasePod, entry: Entry, ports: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": release.meta(entry),
            "spec": {"type": "ClusterIP", "selector": release.selector(entry),
                     # socket.io's long-polling keeps its session in one pod: keep a client on it.
                     "sessionAffinity": "ClientIP", "ports": ports}}


def _network_policy(release: ReleasePod, entry: Entry, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": release.meta(entry),
            "spec": {"podSelector": {"matchLabels": release.selector(entry)},
                     "policyTypes": ["Ingress"], "ingress": rules}}


def _peers(release: ReleasePod) -> list[dict[str, Any]]:
    """Who may call a stand-alone app: whoever the release admits to its Serve port from outside (the chart's rule,
    as rendered) and pods of the same namespace, as for the release's Docker-only entries."""
    return [*(release.serve_peers or []), {"podSelector": {}}]


def served_app(plan: Plan, entry: Entry, release: ReleasePod) -> list[dict[str, Any]]:
    s = plan.settings
    serving = entry.serving
    assert serving is not None
    name = release.name_of(entry)
    head = release.container
    config = {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": release.meta(entry),
        "data": {"serve-config.yaml": yaml.safe_dump(standalone_serve_config(entry, release.serve_config),
                                                     sort_keys=True),
                 "models.json": json.dumps([entry.model_dump(mode="json", exclude_unset=True)], indent=2) + "\n"},
    }
    resources = s.standalone.resources.model_dump(mode="json")
    object_store, shm = object_store_sizes(resources, s.standalone.objectStoreShare)
    gpu = entry.gpus_per_replica > 0
    scheduling = _gpu_scheduling(plan, math.ceil(serving.resources.num_gpus), resources) if gpu else {}
    image = release.gpu_image if gpu else head["image"]
    if image is None:
        raise DeployError([f"{entry.name}: a GPU model, but the release renders no GPU worker group to take the GPU "
                           f"image from (values.ray.gpuPool)"])
    probe = {"httpGet": {"path": HEALTH_PATH, "port": "http"}}
    container = {
        "name": "model",
        "image": image,
        "imagePullPolicy": head["imagePullPolicy"],
        "command": ["bash", "-c", SERVE_SCRIPT.format(metrics=s.serve.metricsPort, object_store=object_store)],
        "ports": [{"name": "http", "containerPort": s.serve.port},
                  *([{"name": "grpc", "containerPort": s.grpc.port}] if s.grpc.enabled else []),
                  {"name": "metrics", "containerPort": s.serve.metricsPort}],
        "env": [*head["env"], {"name": "RAY_AUTH_MODE", "value": "token"}],
        "resources": resources,
        "securityContext": head["securityContext"],
        "volumeMounts": [*head["volumeMounts"], {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
                         {"name": "shm", "mountPath": "/dev/shm"}],
        # Ray starts in ~20 s, then the model loads: allow 10 minutes before liveness applies.
        "startupProbe": {**probe, "periodSeconds": 10, "failureThreshold": 60},
        "livenessProbe": {**probe, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3},
        "readinessProbe": {"httpGet": {"path": READY_PATH, "port": "http"}, "periodSeconds": 5,
                           "timeoutSeconds": 3, "failureThreshold": 3},
    }
    volumes = [*release.pod["volumes"], {"name": "config", "configMap": {"name": name}},
               {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": shm}}]
    low = max(1, serving.autoscaling.min_replicas)
    # A GPU model keeps min_replicas pods: an HPA on CPU says nothing about a GPU model's load, and each pod it
    # added would claim a whole GPU for one replica.
    high = low if gpu else max(low, serving.autoscaling.max_replicas)
    deployment_spec: dict[str, Any] = {} if high > low else {"replicas": low}
    if gpu:
        # A rolling update starts the new pod before the old one goes: a second GPU the node may not have.
        deployment_spec["strategy"] = {"type": "Recreate"}
    deployment_spec.update({
        "selector": {"matchLabels": release.selector(entry)},
        "template": {
            "metadata": {"labels": release.labels_of(entry)},
            "spec": {"securityContext": release.pod["securityContext"], "automountServiceAccountToken": False,
                     **({"imagePullSecrets": release.pod["imagePullSecrets"]} if "imagePullSecrets" in release.pod
                        else {}),
                     **scheduling, "containers": [container], "volumes": volumes},
        },
    })
    objects = [config,
               {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": release.meta(entry),
                "spec": deployment_spec},
               _service(release, entry, [
                   {"name": "http", "port": s.serve.port, "targetPort": "http", "protocol": "TCP"},
                   # The release's Serve config carries grpc_options when grpc.enabled: its proxy listens here.
                   *([{"name": "grpc", "port": s.grpc.port, "targetPort": "grpc", "protocol": "TCP",
                       "appProtocol": "grpc"}] if s.grpc.enabled else []),
                   {"name": "metrics", "port": s.serve.metricsPort, "targetPort": "metrics", "protocol": "TCP"}])]
    if high > low:
        objects.append({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": release.meta(entry),
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                     "minReplicas": low, "maxReplicas": high,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                         "type": "Utilization", "averageUtilization": s.standalone.targetCPUUtilization}}}]},
        })
    if low >= 2:
        objects.append({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": release.meta(entry),
                        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": release.selector(entry)}}})
    if release.serve_peers is not None:
        objects.append(_network_policy(release, entry, [
            {"from": _peers(release), "ports": [{"protocol": "TCP", "port": port} for port in
                                                (s.serve.port, *([s.grpc.port] if s.grpc.enabled else []))]},
            *([{"from": s.networkPolicy.metricsFrom, "ports": [{"protocol": "TCP", "port": s.serve.metricsPort}]}]
              if s.networkPolicy.metricsFrom else []),
        ]))
    return objects


def standalone(plan: Plan, name: str, chart: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One entry's stand-alone objects, given what the chart rendered for the release: a Docker-only entry's are
    the release's own (docker-models.yaml), a served entry's are built here around the release's Serve config."""
    entry = plan.entry(name)
    if entry.unservable_reason is not None:
        return [o for o in chart.get(DOCKER_TEMPLATE, []) if o["metadata"]["labels"].get(MODEL_LABEL) == name]
    return served_app(plan, entry, ReleasePod.of(chart))


def serve_config_of(chart: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The Serve config the chart put in the RayService (the config `serve deploy` takes)."""
    return ReleasePod.of(chart).serve_config
