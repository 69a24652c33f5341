"""A stand-alone app for one catalog entry: a Deployment + Service (+ HPA, PDB where they make sense) + policy.

- An entry Ray Serve runs: the runway-models image with a single-node Ray and Serve inside the pod, serving the
  catalog app and this model from a ConfigMap holding a one-entry catalog and its Serve config. Pods scale with a
  HorizontalPodAutoscaler between the entry's min and max replicas (one Serve replica per pod).
- A Docker-only entry: the objects the release itself deploys for it (the chart's docker-models.yaml: its own
  image, `port` and `options.ExposedPorts`, on a GPU node when `specs` asks for one).
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import yaml

from deploy import names, pods
from deploy.plan import Plan
from serve.catalog import HEALTH_PATH, READY_PATH, ROOT_PATH, Entry

#: The chart's template for Docker-only entries, and the label naming an object's entry.
DOCKER_TEMPLATE = "docker-models.yaml"
MODEL_LABEL = "runway-models/model"
CONFIG_DIR = "/etc/runway-models"
SERVE_SCRIPT = "\n".join([
    "set -euo pipefail",
    "# Ray's control plane requires this token (RAY_AUTH_MODE=token); it lives under $HOME on the emptyDir.",
    "ray get-auth-token --generate > /dev/null",
    "ray start --head --disable-usage-stats --dashboard-host=127.0.0.1 --metrics-export-port={metrics}",
    f"exec serve run --address=auto {CONFIG_DIR}/serve-config.yaml",
])


def name_of(plan: Plan, entry: Entry) -> str:
    return f"{plan.fullname}-{entry.name}"


def _labels(plan: Plan, entry: Entry, selector_only: bool = False) -> dict[str, str]:
    # A separate instance label keeps these pods out of the RayService's Services and policies.
    selector = {"app.kubernetes.io/name": names.chart_name(plan.settings),
                "app.kubernetes.io/instance": name_of(plan, entry)}
    if selector_only:
        return selector
    return {**names.labels(plan.release, plan.settings), **selector, "app.kubernetes.io/component": "standalone",
            MODEL_LABEL: entry.name}


def _meta(plan: Plan, entry: Entry, suffix: str = "", annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name_of(plan, entry) + suffix, "labels": _labels(plan, entry)}
    if annotations:
        meta["annotations"] = annotations
    return meta


def _gpu_scheduling(plan: Plan, gpus: int, resources: dict[str, Any]) -> dict[str, Any]:
    pool = plan.settings.ray.gpuPool
    resources.setdefault("limits", {})[pool.gpuResource] = gpus
    return pods.scheduling(pool.nodeSelector, pool.tolerations)


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


def _service(plan: Plan, entry: Entry, ports: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(plan, entry),
            "spec": {"type": "ClusterIP", "selector": _labels(plan, entry, selector_only=True),
                     # socket.io's long-polling keeps its session in one pod: keep a client on it.
                     "sessionAffinity": "ClientIP", "ports": ports}}


def _network_policy(plan: Plan, entry: Entry, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": _meta(plan, entry),
            "spec": {"podSelector": {"matchLabels": _labels(plan, entry, selector_only=True)},
                     "policyTypes": ["Ingress"], "ingress": rules}}


def _peers(plan: Plan) -> list[dict[str, Any]]:
    """Who may call a stand-alone app: the ingress peers and pods of the same namespace."""
    return [*plan.settings.networkPolicy.ingressFrom, {"podSelector": {}}]


def served_app(plan: Plan, entry: Entry, release_config: dict[str, Any]) -> list[dict[str, Any]]:
    s = plan.settings
    serving = entry.serving
    assert serving is not None
    name = name_of(plan, entry)
    config = {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(plan, entry),
        "data": {"serve-config.yaml": yaml.safe_dump(standalone_serve_config(entry, release_config), sort_keys=True),
                 "models.json": json.dumps([entry.model_dump(mode="json", exclude_unset=True)], indent=2) + "\n"},
    }
    resources = s.standalone.resources.model_dump(mode="json")
    scheduling = (_gpu_scheduling(plan, math.ceil(serving.resources.num_gpus), resources) if entry.gpus_per_replica
                  else {})
    probe = {"httpGet": {"path": HEALTH_PATH, "port": "http"}}
    container = {
        "name": "model",
        "image": names.image(s),
        "imagePullPolicy": s.image.pullPolicy,
        "command": ["bash", "-c", SERVE_SCRIPT.format(metrics=s.serve.metricsPort)],
        "ports": [{"name": "http", "containerPort": s.serve.port},
                  {"name": "metrics", "containerPort": s.serve.metricsPort}],
        "env": [*pods.env(s), {"name": "RAY_AUTH_MODE", "value": "token"}],
        "resources": resources,
        "securityContext": s.securityContext,
        "volumeMounts": [*pods.volume_mounts(s), {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
                         {"name": "shm", "mountPath": "/dev/shm"}],
        # Ray starts in ~20 s, then the model loads: allow 10 minutes before liveness applies.
        "startupProbe": {**probe, "periodSeconds": 10, "failureThreshold": 60},
        "livenessProbe": {**probe, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3},
        "readinessProbe": {"httpGet": {"path": READY_PATH, "port": "http"}, "periodSeconds": 5,
                           "timeoutSeconds": 3, "failureThreshold": 3},
    }
    volumes = [*pods.volumes(s), {"name": "config", "configMap": {"name": name}},
               {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": s.standalone.shmSize}}]
    low = max(1, serving.autoscaling.min_replicas)
    high = max(low, serving.autoscaling.max_replicas)
    deployment_spec: dict[str, Any] = {} if high > low else {"replicas": low}
    deployment_spec.update({
        "selector": {"matchLabels": _labels(plan, entry, selector_only=True)},
        "template": {
            "metadata": {"labels": _labels(plan, entry)},
            "spec": {"securityContext": s.podSecurityContext, "automountServiceAccountToken": False,
                     **pods.pull_secrets(s), **scheduling, "containers": [container], "volumes": volumes},
        },
    })
    objects = [config,
               {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(plan, entry),
                "spec": deployment_spec},
               _service(plan, entry, [{"name": "http", "port": s.serve.port, "targetPort": "http", "protocol": "TCP"},
                                      {"name": "metrics", "port": s.serve.metricsPort, "targetPort": "metrics",
                                       "protocol": "TCP"}])]
    if high > low:
        objects.append({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": _meta(plan, entry),
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                     "minReplicas": low, "maxReplicas": high,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                         "type": "Utilization", "averageUtilization": s.standalone.targetCPUUtilization}}}]},
        })
    if low >= 2:
        objects.append({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": _meta(plan, entry),
                        "spec": {"maxUnavailable": 1,
                                 "selector": {"matchLabels": _labels(plan, entry, selector_only=True)}}})
    objects.append(_network_policy(plan, entry, [
        {"from": _peers(plan), "ports": [{"protocol": "TCP", "port": s.serve.port}]},
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
    return served_app(plan, entry, serve_config_of(chart))


def serve_config_of(chart: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The Serve config the chart put in the RayService (the config `serve deploy` takes)."""
    rayservice = next(o for o in chart["rayservice.yaml"] if o["kind"] == "RayService")
    return yaml.safe_load(rayservice["spec"]["serveConfigV2"])
