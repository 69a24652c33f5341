"""The validators themselves: strict core kinds for a named Kubernetes version, structural CRD subsets, names."""

from __future__ import annotations

import copy

import pytest

from deploy.generate import render
from deploy.validate import check_kube_version, validate_objects
from tests.deploy.conftest import EVERYTHING, KUBE_VERSION, MODELS_JSON


@pytest.fixture(scope="module")
def objects(busy_catalog) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for obj in render(busy_catalog, "kuberay", values=EVERYTHING).objects():
        found.setdefault(obj["kind"], obj)  # the first of each kind: the Ray cluster's
    return found


@pytest.mark.parametrize("version", ["1.30", "1.33", "1.37"])
def test_core_kinds_pass_strict_validation(objects, version, kuberay_dir):
    assert validate_objects(list(objects.values()), version, kuberay_dir).problems == []


@pytest.mark.parametrize("kind, path", [
    ("Ingress", ["spec", "rules", 0, "http", "paths", 0, "pathTyp"]),
    ("Service", ["spec", "portz"]),
    ("PodDisruptionBudget", ["spec", "minAvailabel"]),
    ("NetworkPolicy", ["spec", "ingress", 0, "fromm"]),
])
def test_unknown_fields_fail_strict_core_validation(objects, kind, path, kuberay_dir):
    obj = copy.deepcopy(objects[kind])
    node = obj
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = "x"
    problems = validate_objects([obj], KUBE_VERSION, kuberay_dir).problems
    assert any("strict" in p and path[-1] in p for p in problems), problems


@pytest.mark.parametrize("kind, mutate, expected", [
    ("HTTPRoute", lambda o: o["spec"]["rules"][1].update(timeouts={"request": "forever"}), "does not match"),
    ("HTTPRoute", lambda o: o["spec"]["rules"][0]["backendRefs"][0].pop("port"), "'port' is a required"),
    ("HTTPRoute", lambda o: o["spec"].update(parentRef=[]), "'parentRef' was unexpected"),
    ("ServiceMonitor", lambda o: o["spec"]["endpoints"][0].update(interval="30 seconds"), "does not match"),
    ("ServiceMonitor", lambda o: o["spec"].pop("selector"), "'selector' is a required"),
])
def test_structural_subsets_for_crds_without_offline_schema(objects, kind, mutate, expected, kuberay_dir):
    obj = copy.deepcopy(objects[kind])
    assert validate_objects([obj], KUBE_VERSION, kuberay_dir).problems == []
    mutate(obj)
    problems = validate_objects([obj], KUBE_VERSION, kuberay_dir).problems
    assert any(expected in p and "structural subset" in p for p in problems), problems


def test_names_and_labels(objects, kuberay_dir):
    service = copy.deepcopy(objects["Service"])
    service["metadata"]["name"] = "9-metrics"  # a Service name must start with a letter (DNS-1035)
    service["metadata"]["labels"]["bad key!"] = "x"
    problems = validate_objects([service], KUBE_VERSION, kuberay_dir).problems
    assert any("DNS-1035" in p for p in problems) and any("label key" in p for p in problems)


def test_duplicates_are_reported(objects, kuberay_dir):
    changed = copy.deepcopy(objects["Service"])
    changed["spec"]["ports"][0]["port"] += 1
    assert validate_objects([objects["Service"], objects["Service"]], KUBE_VERSION, kuberay_dir).problems == []
    problems = validate_objects([objects["Service"], changed], KUBE_VERSION, kuberay_dir).problems
    assert any("generated twice, differently" in p for p in problems)


def test_missing_crds_are_reported_when_required():
    report = validate_objects([], KUBE_VERSION, None, require_crd=True)
    assert report.problems and "CRDs not found" in report.problems[0]


@pytest.mark.parametrize("version, ok", [("1.30", True), ("v1.33.2", True), ("1.29", False), ("1.99", False),
                                         ("latest", False)])
def test_kube_version_range(version, ok):
    if ok:
        assert check_kube_version(version).startswith("1.")
    else:
        with pytest.raises(ValueError):
            check_kube_version(version)
