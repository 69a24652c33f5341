"""The chart's part of the hosted endpoints: /<model>/v1 routed, tokens from a Secret mounted as files, and the
always-on gateway application of a model that scales to zero."""

from __future__ import annotations

import yaml

from deploy.generate import render
from deploy.validate import validate_objects
from serve.tokens import TOKENS_DIR_ENV
from tests.helpers.deploy import KUBE_VERSION
from tests.helpers.paths import MODELS_JSON


def _sleepy(entries):
    entries["yolo"]["serving"]["autoscaling"] = {"min_replicas": 0, "max_replicas": 2,
                                                 "downscale_to_zero_delay_s": 300}


def test_hosted_paths_tokens_secret_and_gateway(write_catalog, kuberay_dir):
    values = {"hosted": {"tokensSecret": "model-tokens", "domain": "models.example.org"}, "ingress": {"enabled": True},
              "httpRoute": {"enabled": True, "parentRefs": [{"name": "gw"}]}}
    files = render(str(write_catalog(_sleepy)), "kuberay", values=values).files
    ingress = next(o for o in files["kuberay/ingress.yaml"] if o["metadata"]["name"] == "runway-models")
    prefixes = {p["path"] for p in ingress["spec"]["rules"][0]["http"]["paths"] if p["pathType"] == "Prefix"}
    assert {"/yolo/v1", "/object-detection/v1"} <= prefixes
    route, *per_model = files["kuberay/httproute.yaml"]
    matched = {m["path"]["value"] for rule in route["spec"]["rules"] for m in rule["matches"]}
    assert {"/yolo/v1", "/object-detection/v1"} <= matched
    by_host = {r["spec"]["hostnames"][0]: r["spec"]["rules"][0] for r in per_model}  # Runway's URL form
    yolo = by_host["yolo.models.example.org"]
    assert yolo["matches"] == [{"path": {"type": "PathPrefix", "value": "/v1"}}]
    assert yolo["filters"][0]["urlRewrite"]["path"] == {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/yolo/v1"}

    service = files["kuberay/rayservice.yaml"][0]["spec"]
    apps = {a["name"]: a for a in yaml.safe_load(service["serveConfigV2"])["applications"]}
    assert apps["yolo.v1"]["route_prefix"] == "/yolo/v1"  # the sleeping model's gateway
    assert apps["yolo.v1"]["import_path"] == "serve.app:build_hosted_gateway_app"
    assert "object-detection.v1" not in apps  # never sleeps: its replica answers /v1 itself
    assert apps["yolo"]["deployments"][0]["autoscaling_config"]["downscale_to_zero_delay_s"] == 300
    pods = [service["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]] + [
        group["template"]["spec"] for group in service["rayClusterConfig"]["workerGroupSpecs"]]
    for pod in pods:
        volume = next(v for v in pod["volumes"] if v["name"] == "hosted-tokens")
        assert volume["secret"]["secretName"] == "model-tokens"
        container = pod["containers"][0]
        mount = next(m for m in container["volumeMounts"] if m["name"] == "hosted-tokens")
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env[TOKENS_DIR_ENV] == mount["mountPath"] and mount["readOnly"] is True
    every = [o for docs in files.values() for o in docs]
    assert validate_objects(every, KUBE_VERSION, kuberay_dir, require_crd=True).problems == []


def test_without_a_tokens_secret_nothing_is_mounted():
    files = render(MODELS_JSON, "kuberay", values={}).files
    text = yaml.safe_dump(files["kuberay/rayservice.yaml"])
    assert "hosted-tokens" not in text and TOKENS_DIR_ENV not in text
