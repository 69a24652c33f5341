"""The deployment tests' shared values: values that switch everything on, a catalog edit that needs a bigger CPU
pool, the chart rendered with the real Helm v4 engine, and comparisons between the chart's and the generator's
objects."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

from deploy.settings import deep_merge
from tests.helpers.paths import REPO

CHART = REPO / "deploy" / "helm" / "runway-models"
KUBE_VERSION = "1.33"
RELEASE = "runway-models"
#: Values that switch every optional object on and move most knobs off their defaults.
EVERYTHING: dict[str, Any] = {
    "nameOverride": "rm",
    "image": {"repository": "registry.example.com/ml/runway-models", "tag": "2026.11", "pullPolicy": "Always"},
    "imagePullSecrets": [{"name": "regcred"}],
    "weights": {"source": "pvc", "claimName": "model-weights", "mountPath": "/weights-root"},
    "ray": {"authMode": "disabled", "head": {"hostsReplicas": True, "nodeSelector": {"pool": "system"},
                                             "tolerations": [{"key": "dedicated", "operator": "Exists"}]},
            "cpuPool": {"resources": {"requests": {"cpu": 2, "memory": "4Gi"}, "limits": {"cpu": 2, "memory": "4Gi"}},
                        "nodeSelector": {"pool": "cpu"}},
            "gpuPool": {"gpusPerPod": 2}},
    "serve": {"port": 9000},
    "grpc": {"enabled": True, "port": 9100},
    "ingress": {"enabled": True, "host": "models.example.com", "tls": {"enabled": True, "secretName": "models-tls"},
                "annotations": {"example.com/team": "ml", "nginx.ingress.kubernetes.io/proxy-body-size": "50m"},
                "timeoutSeconds": 86400},
    "httpRoute": {"enabled": True, "parentRefs": [{"name": "gw", "namespace": "gateways", "sectionName": "https"}],
                  "hostnames": ["models.example.com"]},
    "monitoring": {"serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}}},
    "pdb": {"maxUnavailable": 2},
    "networkPolicy": {"metricsFrom": []},
}


#: A Docker-only entry whose image needs a GPU (`specs`: gpu only), in the original's format. models.json has none
#: since densecap is served (issue 10), so the tests of GPU Docker-only deployment (a GPU limit and toleration, the
#: Docker Ingress and HTTPRoute rules, the disabled-GPU-pool error) add this one: `with_docker_gpu`.
DOCKER_GPU: dict[str, Any] = {
    "containerId": "docker-gpu", "tag": "runway/docker-gpu:gpu", "name": "docker-gpu",
    "specs": {"cpu": False, "gpu": True}, "port": "33700",
    "query": {"http": {"route": "query_once", "method": "post", "type": "JSON"},
              "socket": {"namespace": "query", "emit": "update_request", "event": "update_response"},
              "format": {"data": "data:image/jpg;base64,"}},
    "size": ["3.4", "GB"],
    "options": {"image": "runway/docker-gpu:gpu", "Tty": True, "Detach": True, "ExposedPorts": {"33000/tcp": {}},
                "HostConfig": {"AutoRemove": True,
                               "PortBindings": {"33000/tcp": [{"HostIP": "0.0.0.0", "HostPort": "33700"}]}}},
    "needsTraining": False,
    "description": {"first": "A GPU-only image run as the original ran it (a test fixture)."},
    "inputs": ["Image", "Video"],
}


def with_docker_gpu(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The catalog's entries with DOCKER_GPU last (a copy: neither is changed)."""
    return copy.deepcopy(entries) + [copy.deepcopy(DOCKER_GPU)]


def with_busy_cpu_pool(entries: dict[str, dict[str, Any]]) -> None:
    """object-detection keeps 3 replicas of 1.5 CPUs: the CPU pool needs 2 pods or more (4 CPUs a pod by default,
    2 in EVERYTHING), so a PodDisruptionBudget is rendered for it."""
    serving = entries["object-detection"]["serving"]
    serving["autoscaling"] = {"min_replicas": 3, "max_replicas": 3}
    serving["resources"] = {"num_cpus": 1.5}


def render_chart(values: dict[str, Any] | None, release: str = RELEASE, namespace: str = "ml") -> dict[str, str]:
    from helm_python.chart import Chart

    with Chart.load(str(CHART)) as chart:
        return chart.render(values or {}, name=release, namespace=namespace)


def chart_objects(values: dict[str, Any] | None, release: str = RELEASE) -> list[dict[str, Any]]:
    """Every object the chart renders (NOTES.txt left out), parsed."""
    objects = []
    for path, text in sorted(render_chart(values, release).items()):
        if not path.endswith(".txt"):
            objects += [doc for doc in yaml.safe_load_all(text) if doc]
    return objects


def normalise(obj: dict[str, Any]) -> dict[str, Any]:
    """What may differ between the chart and the generator: who manages the object (Helm / the generator) and
    the YAML text of serveConfigV2 (compared parsed)."""
    obj = copy.deepcopy(obj)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "app.kubernetes.io/managed-by" in node:
                node["app.kubernetes.io/managed-by"] = "<managed-by>"
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(obj)
    if obj.get("kind") == "RayService":
        obj["spec"]["serveConfigV2"] = yaml.safe_load(obj["spec"]["serveConfigV2"])
    return obj


def nginx_rewrite(ingress: dict[str, Any], request_path: str, host: str | None = None) -> tuple[str, str] | None:
    """What ingress-nginx does with an Ingress of regex paths (use-regex) and a rewrite-target such as /$2, for a
    request to `host` (None: a rule without one): (backend Service, path it receives), None when nothing matches."""
    target = ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/rewrite-target"]
    for rule in ingress["spec"]["rules"]:
        if rule.get("host") != host:
            continue
        for path in rule["http"]["paths"]:
            match = re.match(path["path"], request_path)
            if match:
                rewritten = re.sub(r"\$(\d)", lambda m: match.group(int(m.group(1))) or "", target)
                return path["backend"]["service"]["name"], rewritten
    return None


def by_identity(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): normalise(o) for o in objects}


def merged(*parts: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for part in parts:
        result = deep_merge(result, part)
    return result


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under folder with its bytes (to prove a folder was left untouched)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
