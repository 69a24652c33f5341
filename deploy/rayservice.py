"""The KubeRay `ray.io/v1` RayService: serveConfigV2 from the plan, a head that hosts no model replicas, a CPU
worker group and (for models with specs.gpu) a GPU worker group sized from the catalog's autoscaling."""

from __future__ import annotations

from typing import Any

import yaml

from deploy import names, pods
from deploy.plan import Plan
from deploy.serve_config import catalog_application, serve_config
from deploy.settings import CLIENT_PORT, DASHBOARD_AGENT_PORT, GCS_PORT, Settings

DOCKER_ONLY_ANNOTATION = "runway-models/docker-only"


def plan_serve_config(plan: Plan) -> dict[str, Any]:
    """The Serve config the RayService carries: the catalog app, then each model's application from the values."""
    settings = plan.settings
    apps = [catalog_application(settings.catalog.path)] + [m.application for m in settings.models]
    return serve_config(apps, settings.serve.port)


def dump_serve_config(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=True, default_flow_style=False)


def _pod_labels(plan: Plan, component: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**names.selector_labels(plan.release, plan.settings), "app.kubernetes.io/component": component,
            **(extra or {})}


def _container(settings: Settings, name: str, ports: list[dict[str, Any]], resources: dict[str, Any],
               probes: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "image": names.image(settings),
        "imagePullPolicy": settings.image.pullPolicy,
        "ports": ports,
        "env": pods.env(settings),
        "resources": resources,
        "securityContext": settings.securityContext,
        "volumeMounts": pods.volume_mounts(settings),
        **probes,
    }


def _pod_spec(settings: Settings, container: dict[str, Any], scheduling: dict[str, Any],
              automount_token: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {"securityContext": settings.podSecurityContext, **pods.pull_secrets(settings)}
    if not automount_token:
        spec["automountServiceAccountToken"] = False
    spec.update(scheduling)
    spec["containers"] = [container]
    spec["volumes"] = pods.volumes(settings)
    return spec


def head_group(plan: Plan) -> dict[str, Any]:
    s = plan.settings
    head = s.ray.head
    params = {"dashboard-host": "0.0.0.0", "dashboard-port": str(s.serve.dashboardPort),
              "metrics-export-port": str(s.serve.metricsPort)}
    if not head.hostsReplicas:
        params["num-cpus"] = "0"
    ports = [{"name": "gcs-server", "containerPort": GCS_PORT},
             {"name": "dashboard", "containerPort": s.serve.dashboardPort},
             {"name": "client", "containerPort": CLIENT_PORT},
             {"name": "serve", "containerPort": s.serve.port},
             {"name": "metrics", "containerPort": s.serve.metricsPort}]
    health = pods.http_probe("/api/gcs_healthz", s.serve.dashboardPort, delay=30, timeout=5, failures=120)
    ready = pods.http_probe("/api/gcs_healthz", s.serve.dashboardPort, delay=10, timeout=2, failures=10)
    container = _container(s, "ray-head", ports, head.resources.model_dump(mode="json"),
                           {"livenessProbe": health, "readinessProbe": ready})
    # The head keeps its service-account token: KubeRay's autoscaler sidecar talks to the API server.
    spec = _pod_spec(s, container, pods.scheduling(head.nodeSelector, head.tolerations), automount_token=True)
    return {"serviceType": "ClusterIP", "rayStartParams": params,
            "template": {"metadata": {"labels": _pod_labels(plan, "ray-head")}, "spec": spec}}


def _worker_group(plan: Plan, group: str, resources: dict[str, Any], node_selector: dict[str, str],
                  tolerations: list[dict[str, Any]], low: int, high: int) -> dict[str, Any]:
    s = plan.settings
    ports = [{"name": "serve", "containerPort": s.serve.port},
             {"name": "metrics", "containerPort": s.serve.metricsPort}]
    health = pods.http_probe("/api/local_raylet_healthz", DASHBOARD_AGENT_PORT, delay=30, timeout=2, failures=120)
    # Ready once this node's Serve proxy is: only then does KubeRay's serve Service send it traffic.
    ready = pods.http_probe("/-/healthz", s.serve.port, delay=10, timeout=2, failures=1)
    container = _container(s, "ray-worker", ports, resources, {"livenessProbe": health, "readinessProbe": ready})
    spec = _pod_spec(s, container, pods.scheduling(node_selector, tolerations), automount_token=False)
    return {"groupName": group, "replicas": low, "minReplicas": low, "maxReplicas": high,
            "rayStartParams": {"metrics-export-port": str(s.serve.metricsPort)},
            "template": {"metadata": {"labels": _pod_labels(plan, "ray-worker", {"runway-models/pool": group})},
                         "spec": spec}}


def worker_groups(plan: Plan) -> list[dict[str, Any]]:
    ray = plan.settings.ray
    groups = []
    if ray.cpuPool.enabled and ray.cpuPool.maxReplicas > 0:
        groups.append(_worker_group(plan, "cpu", ray.cpuPool.resources.model_dump(mode="json"),
                                    ray.cpuPool.nodeSelector, ray.cpuPool.tolerations,
                                    ray.cpuPool.minReplicas, ray.cpuPool.maxReplicas))
    if ray.gpuPool.enabled and ray.gpuPool.maxReplicas > 0:
        resources = ray.gpuPool.resources.model_dump(mode="json")
        resources["limits"][ray.gpuPool.gpuResource] = ray.gpuPool.gpusPerPod
        groups.append(_worker_group(plan, "gpu", resources, ray.gpuPool.nodeSelector, ray.gpuPool.tolerations,
                                    ray.gpuPool.minReplicas, ray.gpuPool.maxReplicas))
    return groups


def rayservice(plan: Plan) -> dict[str, Any]:
    s = plan.settings
    full = plan.fullname
    metadata: dict[str, Any] = {"name": full, "labels": names.labels(plan.release, s)}
    if s.skippedModels:
        # Docker-only entries are not part of the Ray cluster: say which, on the object itself.
        metadata["annotations"] = {DOCKER_ONLY_ANNOTATION: ",".join(m.name for m in s.skippedModels)}
    cluster: dict[str, Any] = {"rayVersion": s.ray.version, "enableInTreeAutoscaling": s.ray.autoscaler.enabled,
                               "authOptions": {"mode": s.ray.authMode}}
    if s.ray.autoscaler.enabled:
        cluster["autoscalerOptions"] = {
            "upscalingMode": s.ray.autoscaler.upscalingMode,
            "idleTimeoutSeconds": s.ray.autoscaler.idleTimeoutSeconds,
            "resources": s.ray.autoscaler.resources.model_dump(mode="json"),
            "securityContext": s.securityContext,
            "env": [{"name": "HOME", "value": "/tmp/ray"}],
        }
    cluster["headGroupSpec"] = head_group(plan)
    cluster["workerGroupSpecs"] = worker_groups(plan)
    serve_labels = {**names.labels(plan.release, s), "app.kubernetes.io/component": "serve"}
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": metadata,
        "spec": {
            "serveConfigV2": dump_serve_config(plan_serve_config(plan)),
            "upgradeStrategy": {"type": s.ray.upgradeStrategy},
            "serveService": {"metadata": {"name": serve_service_name(plan), "labels": serve_labels},
                             "spec": {"type": "ClusterIP", "ports": [{"name": "serve", "port": s.serve.port}]}},
            "rayClusterConfig": cluster,
        },
    }


def serve_service_name(plan: Plan) -> str:
    """The Service KubeRay creates from `serveService` and points at the pods whose Serve proxy is healthy."""
    return f"{plan.fullname}-serve"
