"""The Helm chart, rendered and linted with the real Helm v4 engine (helm-python-sdk): default values and values
generated from models.json; every rendered object validates; the chart renders what the generator writes."""

from __future__ import annotations

import json

import pytest
import yaml

from deploy.chart_files import schema_json, values_yaml
from deploy.constants import CLIENT_PORT, DASHBOARD_AGENT_PORT, GCS_PORT, MAX_RAYSERVICE_NAME
from deploy.generate import render
from deploy.settings import APP_VERSION, CHART_NAME, CHART_VERSION
from deploy.validate import validate_objects
from serve.catalog import PUBLIC_CATALOG_PATHS, PUBLIC_CATALOG_PREFIXES
from tests.helpers.deploy import (
    CHART, EVERYTHING, KUBE_VERSION, RELEASE, by_identity, chart_objects, merged, render_chart,
)
from tests.helpers.paths import MODELS_JSON

@pytest.fixture(scope="module")
def generated_values() -> dict:
    return render(MODELS_JSON, "helm-values").files["helm-values.yaml"][0]


def _lint(values: dict) -> dict:
    from helm_python.chart import lint

    return lint(str(CHART), values, strict=True, kube_version=f"v{KUBE_VERSION}.0")


def _lint_findings(report: dict) -> list:
    return report["errors"] + [m for m in report["messages"] if m["severity"] >= 2]


def test_helm_python_sdk_is_the_helm_v4_engine():
    import helm_python

    assert helm_python.helm_sdk_version().startswith("v4.")


def test_chart_metadata_matches_the_package():
    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert (meta["apiVersion"], meta["name"], meta["version"], meta["appVersion"]) == \
        ("v2", CHART_NAME, CHART_VERSION, APP_VERSION)
    assert meta["kubeVersion"] == ">=1.30.0-0"


def test_values_and_schema_are_generated_from_the_settings_model():
    assert (CHART / "values.yaml").read_text() == values_yaml(), \
        "values.yaml is stale: run python -m deploy.chart_files"
    assert (CHART / "values.schema.json").read_text() == schema_json(), \
        "values.schema.json is stale: run python -m deploy.chart_files"


def _settings_keys(model, indent=0):
    from pydantic import BaseModel

    for name in type(model).model_fields:
        yield indent, name
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            yield from _settings_keys(value, indent + 2)


def test_every_values_key_has_a_doc_comment_and_the_settings_defaults():
    from helm_python.chart import Chart

    from deploy.settings import Settings

    lines = (CHART / "values.yaml").read_text().splitlines()
    position = 0
    for indent, key in _settings_keys(Settings()):
        wanted = " " * indent + f"{key}:"
        while not (lines[position] == wanted or lines[position].startswith(wanted + " ")):
            position += 1
        assert lines[position - 1].startswith(" " * indent + "# -- "), f"{key} has no '# --' comment"
    with Chart.load(str(CHART)) as chart:
        assert chart.values == Settings().model_dump(mode="json")


def test_schema_requires_keys_and_rejects_unknown_ones():
    from helm_python import HelmError
    from helm_python.chart import Chart

    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["additionalProperties"] is False and "ray" in schema["required"]
    assert schema["properties"]["ray"]["properties"]["authMode"]["enum"] == ["token", "disabled"]
    with Chart.load(str(CHART)) as chart:
        chart.validate_schema({})
        for bad in ({"ingress": {"enabeld": True}}, {"ray": {"authMode": "tokn"}}, {"pdb": {"minAvailable": "50%"}},
                    {"ray": {"gpuPool": None}}):
            with pytest.raises(HelmError):
                chart.validate_schema(bad)


@pytest.mark.parametrize("case", ["default", "generated", "everything"])
def test_lints_strict_and_every_rendered_object_validates(case, generated_values, kuberay_dir):
    values = {"default": {}, "generated": generated_values, "everything": merged(generated_values, EVERYTHING)}[case]
    assert _lint_findings(_lint(values)) == []
    objects = chart_objects(values)
    assert any(o["kind"] == "RayService" for o in objects)
    report = validate_objects(objects, KUBE_VERSION, kuberay_dir, require_crd=True)
    assert report.problems == []


def test_default_values_deploy_the_catalog_app_only():
    rs = next(o for o in chart_objects({}) if o["kind"] == "RayService")
    config = yaml.safe_load(rs["spec"]["serveConfigV2"])
    assert [a["name"] for a in config["applications"]] == ["catalog"]
    assert [g["groupName"] for g in rs["spec"]["rayClusterConfig"]["workerGroupSpecs"]] == ["cpu"]


@pytest.mark.parametrize("extra", [{}, EVERYTHING, {"ray": {"autoscaler": {"enabled": False}, "cpuPool":
                                                          {"enabled": False}}, "ingress": {"enabled": False},
                                                   "pdb": {"enabled": False}, "networkPolicy": {"enabled": False},
                                                   "fullnameOverride": "vision"}],
                         ids=["defaults", "everything", "minimal"])
def test_helm_install_with_the_generated_values_renders_what_generate_wrote(extra):
    """The generator computes values and renders the chart; `helm install -f helm-values.yaml` with the chart
    gives the very objects `--target kuberay` wrote (the helm-values file carries every generated key)."""
    rendered = render(MODELS_JSON, "all", values=extra)
    generated = by_identity([o for path, docs in rendered.files.items() if path.startswith("kuberay/")
                             for o in docs])
    values = rendered.files["helm-values.yaml"][0]
    from_chart = by_identity(chart_objects(values))
    assert sorted(from_chart) == sorted(generated)
    for key in generated:
        assert from_chart[key] == generated[key], key


def test_rayservice_of_chart_equals_generator_for_another_release():
    rendered = render(MODELS_JSON, "all", release="prod")
    values = rendered.files["helm-values.yaml"][0]
    chart_rs = by_identity(chart_objects(values, release="prod"))[("RayService", "prod-runway-models")]
    assert chart_rs == by_identity(rendered.files["kuberay/rayservice.yaml"])[("RayService", "prod-runway-models")]


def test_notes_say_how_to_reach_http_socketio_and_metrics(generated_values):
    notes = render_chart(generated_values)[f"{CHART_NAME}/templates/NOTES.txt"]
    assert "POST /yolo/query_once" in notes and "/yolo/socket.io" in notes
    assert "port-forward svc/runway-models-serve 8000:8000" in notes
    assert "im2txt" in notes and "Metrics" in notes


def test_ray_ports_name_limit_and_catalog_paths_are_the_generators():
    """The chart's constants (_helpers.tpl) and the generator's (deploy/constants.py, serve.catalog) agree."""
    objects = {o["kind"]: o for o in chart_objects({"ingress": {"enabled": True}})}
    cluster = objects["RayService"]["spec"]["rayClusterConfig"]
    head = cluster["headGroupSpec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in head["ports"]}
    assert (ports["gcs-server"], ports["client"]) == (GCS_PORT, CLIENT_PORT)
    worker = cluster["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    assert worker["livenessProbe"]["httpGet"]["port"] == DASHBOARD_AGENT_PORT
    operator_rule = objects["NetworkPolicy"]["spec"]["ingress"][-1]
    assert {"protocol": "TCP", "port": DASHBOARD_AGENT_PORT} in operator_rule["ports"]
    routes = [(p["path"], p["pathType"]) for p in objects["Ingress"]["spec"]["rules"][0]["http"]["paths"]]
    catalog_routes = [(p, "Exact") for p in PUBLIC_CATALOG_PATHS] + [(p, "Prefix") for p in PUBLIC_CATALOG_PREFIXES]
    assert routes[:len(catalog_routes)] == catalog_routes  # the playground's scripts are a folder: by prefix
    assert chart_objects({"fullnameOverride": "a" * MAX_RAYSERVICE_NAME})


@pytest.mark.parametrize("values, message", [
    ({"fullnameOverride": "a" * (MAX_RAYSERVICE_NAME + 1)}, str(MAX_RAYSERVICE_NAME)),
    ({"httpRoute": {"enabled": True}}, "parentRefs"),
])
def test_chart_refuses_what_kuberay_or_gateway_api_would(values, message):
    from helm_python import HelmError

    with pytest.raises(HelmError, match=message):
        render_chart(values, release=RELEASE)


@pytest.mark.parametrize("target", ["kuberay", "helm-values"])
def test_the_name_limit_is_the_charts_and_generate_names_the_values_key(target, write_catalog, raw_catalog):
    """KubeRay's RayService name limit is checked by the chart alone; generate reports its refusal as a problem that
    names the values key (a one-entry catalog, so no stand-alone name is too long first)."""
    from deploy import DeployError

    catalog = write_catalog(entries=[e for e in raw_catalog if e["name"] == "yolo"])
    release = "a" * (MAX_RAYSERVICE_NAME + 1 - len("-runway-models")) + "-runway-models"
    with pytest.raises(DeployError) as caught:
        render(catalog, target, release=release)
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(f'values.fullnameOverride: the RayService name "{release}" is longer '
                                               f"than {MAX_RAYSERVICE_NAME} characters")
    assert render(catalog, target, release=release[1:]).files


@pytest.mark.parametrize("values, key", [
    ({"ingress": {"tls": {"enabled": True}}}, "ingress.tls.secretName"),
    ({"httpRoute": {"enabled": True}}, "httpRoute.parentRefs"),
    ({"weights": {"source": "pvc"}}, "weights.claimName"),
])
def test_cross_field_rules_are_written_once_and_checked_by_helm_and_generate(values, key, tmp_path):
    """Each rule lives in the settings model's schema only (no template `fail`, no Python validator): Helm
    refuses it on install and generate refuses it naming the values key."""
    from helm_python import HelmError

    from deploy import DeployError
    from deploy.generate import generate

    with pytest.raises(HelmError, match="/" + key.replace(".", "/")):
        render_chart(values)
    with pytest.raises(DeployError) as caught:
        generate(MODELS_JSON, tmp_path / "out", "helm-values", values=values)
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(f"values.{key}: required when ")
    for template in (CHART / "templates").iterdir():
        assert "required \"" not in template.read_text() and "fail \"" not in template.read_text(), template.name
