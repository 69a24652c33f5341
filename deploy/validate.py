"""Offline validation of every object we emit, against real schemas of named versions.

- Core kinds (Service, Ingress, Deployment, ...): `kubernetes-validate` in strict mode (unknown fields fail) for a
  named Kubernetes version (default 1.33).
- RayService: the KubeRay 1.7.0 CRD's `openAPIV3Schema` with `jsonschema`, defaults applied and unknown fields
  rejected (`crd.py`); its head/worker pod templates also as core `PodTemplate`s; its `serveConfigV2` with Ray's
  ServeDeploySchema; and the KubeRay operator's own admission rules that concern us (`kuberay_rules`).
- HTTPRoute, GRPCRoute, ServiceMonitor: no CRD is available offline, so a hand-written structural subset
  (`extra_schemas.py`).
- Every object: names (DNS-1123/1035, lengths) and label syntax.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from deploy import names
from deploy.crd import validate_custom_resource
from deploy.defaults import DEFAULT_KUBE_VERSION, KUBERAY_VERSION
from deploy.extra_schemas import SCHEMAS
from deploy.serve_config import validate_serve_config
from serve.errors import location

MIN_KUBE_VERSION = (1, 30)
#: The generator's only custom resource with a CRD offline (it writes no RayCluster of its own).
CRD_FILES = {("ray.io/v1", "RayService"): "ray.io_rayservices.yaml"}
#: KubeRay's CRD for it, a trimmed copy shipped as package data (see its SOURCE.md).
PACKAGED_SCHEMAS = Path(__file__).resolve().parent / "schemas" / f"kuberay-v{KUBERAY_VERSION}"
RAYSERVICE_UPGRADE_TYPES = {"NewCluster", "NewClusterWithIncrementalUpgrade", "None"}
DNS1035_KINDS = {"Service", "RayService"}


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def find_kuberay_schemas(explicit: str | Path | None = None) -> Path | None:
    """The folder holding KubeRay's CRDs: explicit, $RUNWAY_KUBERAY_SCHEMAS, or the copy shipped in this package
    (`PACKAGED_SCHEMAS`, see its SOURCE.md); None when none of them holds the RayService CRD."""
    for candidate in (explicit, os.environ.get("RUNWAY_KUBERAY_SCHEMAS"), PACKAGED_SCHEMAS):
        if candidate and (Path(candidate) / CRD_FILES[("ray.io/v1", "RayService")]).is_file():
            return Path(candidate)
    return None


def check_kube_version(version: str) -> str:
    parts = version.lstrip("v").split(".")
    try:
        major_minor = (int(parts[0]), int(parts[1]))
    except (IndexError, ValueError):
        raise ValueError(f"Kubernetes version {version!r}: expected e.g. 1.33") from None
    if major_minor < MIN_KUBE_VERSION:
        raise ValueError(f"Kubernetes version {version}: 1.30 or newer")
    supported = kubernetes_validate.utils.latest_version()
    if major_minor > tuple(int(p) for p in supported.split(".")[:2]):
        raise ValueError(f"Kubernetes version {version}: kubernetes-validate knows up to {supported}")
    return f"{major_minor[0]}.{major_minor[1]}"


def _kind_name(obj: dict[str, Any]) -> str:
    return f"{obj.get('kind', '?')}/{obj.get('metadata', {}).get('name', '?')}"


def core_problems(obj: dict[str, Any], kube_version: str) -> list[str]:
    """kubernetes-validate, strict: the first schema error (it stops there), or a missing schema."""
    try:
        kubernetes_validate.validate(obj, kube_version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{location(exc.path)}: {exc.message[:300]} (Kubernetes {exc.version}, strict)"]
    except kubernetes_validate.SchemaNotFoundError as exc:
        return [f"no Kubernetes {kube_version} schema for {exc.kind} {exc.api_version}"]
    return []


def _walk_labels(node: Any, path: str) -> list[str]:
    problems: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("labels", "matchLabels") and isinstance(value, dict):
                for label, label_value in value.items():
                    bad = names.label_key_problem(str(label)) or (
                        names.label_value_problem(label_value) if isinstance(label_value, str)
                        else f"label {label!r}: value must be a string")
                    if bad:
                        problems.append(f"{path}.{key}: {bad}")
            else:
                problems += _walk_labels(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            problems += _walk_labels(item, f"{path}[{index}]")
    return problems


def metadata_problems(obj: dict[str, Any]) -> list[str]:
    name = obj.get("metadata", {}).get("name", "")
    kind = obj.get("kind", "")
    problems = []
    if kind in DNS1035_KINDS:
        if not names.is_dns1035_label(name):
            problems.append(f"metadata.name: {name!r} is not a DNS-1035 label (a-z, 0-9, '-', a letter first, <= 63)")
    elif not names.is_dns1123_subdomain(name):
        problems.append(f"metadata.name: {name!r} is not a DNS-1123 subdomain")
    for key in obj.get("metadata", {}).get("annotations", {}) or {}:
        bad = names.label_key_problem(key)
        if bad:
            problems.append(f"metadata.annotations: {bad.replace('label key', 'annotation key')}")
    return problems + [p.lstrip(".") for p in _walk_labels(obj, "")]


def _object_meta_problems(obj: dict[str, Any], kube_version: str) -> list[str]:
    """A custom resource's metadata is ObjectMeta: check it with Kubernetes' own schema (via a ConfigMap)."""
    probe = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj.get("metadata", {})}
    return core_problems(probe, kube_version)


def _templates(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    cluster = spec.get("rayClusterConfig", {})
    found = [("headGroupSpec", cluster.get("headGroupSpec", {}))]
    found += [(f"workerGroupSpecs[{g.get('groupName')}]", g) for g in cluster.get("workerGroupSpecs", []) or []]
    return found


def kuberay_rules(obj: dict[str, Any], kube_version: str) -> list[str]:
    """What the KubeRay 1.7 operator checks on admission (utils/validation.go) and what it needs to work. The name's
    length is not checked here: the chart refuses a longer name before anything is rendered."""
    problems = []
    spec = obj.get("spec", {})
    strategy = (spec.get("upgradeStrategy") or {}).get("type")
    if strategy is not None and strategy not in RAYSERVICE_UPGRADE_TYPES:
        problems.append(f"spec.upgradeStrategy.type: {strategy!r} is not one of {sorted(RAYSERVICE_UPGRADE_TYPES)}")
    cluster = spec.get("rayClusterConfig", {})
    if (cluster.get("authOptions") or {}).get("mode") == "token":
        version = tuple(int(p) for p in str(cluster.get("rayVersion", "0.0.0")).split(".")[:3] if p.isdigit())
        if version < (2, 52, 0):
            problems.append("spec.rayClusterConfig.rayVersion: token authentication needs Ray 2.52.0 or newer")
    groups = set()
    for where, group in _templates(spec):
        containers = group.get("template", {}).get("spec", {}).get("containers", [])
        if not containers:
            problems.append(f"spec.rayClusterConfig.{where}: no containers")
            continue
        params = group.get("rayStartParams", {}) or {}
        if "labels" in params:
            problems.append(f"spec.rayClusterConfig.{where}.rayStartParams.labels: not supported; use labels")
        if group.get("resources") and any(params.get(k) for k in ("num-cpus", "num-gpus", "memory", "resources")):
            problems.append(f"spec.rayClusterConfig.{where}: resources in both rayStartParams and resources")
        if where != "headGroupSpec":
            group_name = group.get("groupName", "")
            if not names.is_dns1123_label(group_name) or group_name in groups:
                problems.append(f"spec.rayClusterConfig.{where}.groupName: must be a unique DNS-1123 label")
            groups.add(group_name)
            low, high = group.get("minReplicas", 0), group.get("maxReplicas", 0)
            if low < 0 or high < 0 or low > high:
                problems.append(f"spec.rayClusterConfig.{where}: minReplicas {low} / maxReplicas {high}")
            if group.get("idleTimeoutSeconds") is not None and \
                    (cluster.get("autoscalerOptions") or {}).get("version") != "v2":
                problems.append(f"spec.rayClusterConfig.{where}.idleTimeoutSeconds: needs autoscaler v2")
        template = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "template"},
                    "template": group.get("template", {})}
        problems += [f"spec.rayClusterConfig.{where}.template (as a core PodTemplate): {p}"
                     for p in core_problems(template, kube_version)]
    head = cluster.get("headGroupSpec", {}).get("template", {}).get("spec", {}).get("containers", [{}])[0]
    if not spec.get("serveService") and not any(p.get("name") == "serve" for p in head.get("ports", [])):
        problems.append("spec.rayClusterConfig.headGroupSpec: the head container needs a port named 'serve'")
    try:
        config = yaml.safe_load(spec.get("serveConfigV2", "")) or {}
    except yaml.YAMLError as exc:
        return problems + [f"spec.serveConfigV2: not YAML: {exc}"]
    problems += [f"spec.serveConfigV2: {p}" for p in validate_serve_config(config)]
    return problems


def _structural(obj: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    validator = jsonschema.validators.Draft7Validator(schema)
    return [f"{location(e.absolute_path)}: {e.message[:300]} (structural subset)"
            for e in validator.iter_errors(obj)]


def validate_object(obj: dict[str, Any], kube_version: str = DEFAULT_KUBE_VERSION,
                    kuberay_dir: Path | None = None) -> tuple[list[str], str]:
    """(problems, how it was checked) for one object."""
    key = (obj.get("apiVersion"), obj.get("kind"))
    problems = metadata_problems(obj)
    if key in CRD_FILES:
        if kuberay_dir is None:
            return problems + kuberay_rules(obj, kube_version), "KubeRay rules only (CRD schemas not found)"
        _, crd = validate_custom_resource(obj, kuberay_dir / CRD_FILES[key], "v1")  # type: ignore[index]
        problems += crd + _object_meta_problems(obj, kube_version)
        if not crd:  # the operator's rules assume a well-typed object
            problems += kuberay_rules(obj, kube_version)
        return problems, f"KubeRay {KUBERAY_VERSION} CRD (strict, defaults applied)"
    if key in SCHEMAS:
        problems += _structural(obj, SCHEMAS[key]) + _object_meta_problems(obj, kube_version)  # type: ignore[index]
        return problems, "structural subset (no CRD offline)"
    return problems + core_problems(copy.deepcopy(obj), kube_version), f"Kubernetes {kube_version} (strict)"


def validate_objects(objects: list[dict[str, Any]], kube_version: str = DEFAULT_KUBE_VERSION,
                     kuberay_dir: Path | None = None, require_crd: bool = False) -> Report:
    version = check_kube_version(kube_version)
    report = Report()
    if kuberay_dir is None and require_crd:
        report.problems.append(f"KubeRay {KUBERAY_VERSION} CRDs not found (set RUNWAY_KUBERAY_SCHEMAS or --schemas)")
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for obj in objects:
        problems, how = validate_object(obj, version, kuberay_dir)
        report.problems += [f"{_kind_name(obj)}: {p}" for p in problems]
        note = f"{_kind_name(obj)}: {how}"
        if note not in report.notes:
            report.notes.append(note)
        ident = (obj.get("kind", ""), obj.get("metadata", {}).get("name", ""))
        # The same object may appear twice (a Docker-only entry's objects in the release and in its stand-alone
        # file); two different objects of one name may not.
        if ident in seen and seen[ident] != obj:
            report.problems.append(f"{_kind_name(obj)}: generated twice, differently")
        seen[ident] = obj
    return report
