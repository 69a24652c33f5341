"""The chart's part of the hosted endpoints: /<model>/v1 routed, Runway's host form <model>.<domain>/v1 (an
HTTPRoute and, with ingress-nginx, an Ingress per model), tokens from a Secret mounted as files, and the always-on
gateway application of a model that scales to zero."""

from __future__ import annotations

import yaml

from deploy.generate import render
from deploy.settings import Settings
from deploy.validate import validate_objects
from serve.catalog import HOSTED_PREFIX
from serve.tokens import TOKENS_DIR_ENV
from tests.helpers.deploy import KUBE_VERSION, by_identity, chart_objects, merged, nginx_rewrite, render_chart
from tests.helpers.paths import MODELS_JSON

DOMAIN = "models.example.org"
#: Runway's host form through both routes in.
HOSTED = {"hosted": {"domain": DOMAIN}, "ingress": {"enabled": True},
          "httpRoute": {"enabled": True, "parentRefs": [{"name": "gw"}]}}


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


def _agreeing(values: dict) -> list[dict]:
    """The release's objects from the generator; the chart given the generated values renders the same."""
    generated = render(MODELS_JSON, "kuberay", values=values).objects()
    helm_values = render(MODELS_JSON, "helm-values", values=values).files["helm-values.yaml"][0]
    assert by_identity(chart_objects(helm_values)) == by_identity(generated)
    return generated


def _gateway_rewrite(route: dict, host: str, path: str) -> tuple[str, int, str] | None:
    """What a Gateway does with an HTTPRoute of PathPrefix matches and a ReplacePrefixMatch rewrite."""
    if host not in route["spec"]["hostnames"]:
        return None
    for rule in route["spec"]["rules"]:
        for match in rule["matches"]:
            prefix = match["path"]["value"]
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                backend, replace = rule["backendRefs"][0], rule["filters"][0]["urlRewrite"]["path"]
                return backend["name"], backend["port"], replace["replacePrefixMatch"] + path[len(prefix):]
    return None


def test_each_model_answers_at_its_own_host_through_the_ingress_and_the_httproute(kuberay_dir):
    assert Settings().hosted.prefix == HOSTED_PREFIX  # the chart gets the runtime's prefix as a value
    objects = _agreeing(HOSTED)
    plan = render(MODELS_JSON, "serve-config", values=HOSTED).plan
    hosted_paths = {m.entry.name: m.entry.hosted_path for m in plan.served}  # models[].hostedPath
    ingresses = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Ingress"}
    routes = {o["metadata"]["name"]: o for o in objects if o["kind"] == "HTTPRoute"}
    assert sorted(n for n in ingresses if "-v1-" in n) == sorted(f"runway-models-v1-{n}" for n in hosted_paths)
    for name, hosted_path in hosted_paths.items():
        ingress, host = ingresses[f"runway-models-v1-{name}"], f"{name}.{DOMAIN}"
        assert [rule["host"] for rule in ingress["spec"]["rules"]] == [host]
        [path] = ingress["spec"]["rules"][0]["http"]["paths"]
        assert path["pathType"] == "ImplementationSpecific"
        assert path["backend"]["service"] == {"name": "runway-models-serve", "port": {"number": 8000}}
        annotations = ingress["metadata"]["annotations"]
        assert annotations["nginx.ingress.kubernetes.io/use-regex"] == "true"
        assert annotations["nginx.ingress.kubernetes.io/rewrite-target"] == f"{hosted_path}$1$2"
        assert annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600"  # the release's own
        assert "tls" not in ingress["spec"]
        # The Ingress and the HTTPRoute send Runway's URLs to the same place: the model's hosted API.
        for request in ("/v1", "/v1/", "/v1/info", "/v1/query"):
            target = hosted_path + request[len(HOSTED_PREFIX):]
            assert nginx_rewrite(ingress, request, host) == ("runway-models-serve", target)
            assert _gateway_rewrite(routes[f"runway-models-v1-{name}"], host, request) == \
                ("runway-models-serve", 8000, target)
        assert nginx_rewrite(ingress, "/v1x", host) is None
        assert nginx_rewrite(ingress, hosted_path, host) is None  # the path form is the main Ingress's
        assert nginx_rewrite(ingress, "/v1/", None) is None        # its own host only
    assert validate_objects(objects, KUBE_VERSION, kuberay_dir, require_crd=True).problems == []


def test_the_host_ingresses_carry_tls_for_their_own_host():
    tls = merged(HOSTED, {"ingress": {"tls": {"enabled": True, "secretName": "wildcard-tls"}}})
    ingress = next(o for o in _agreeing(tls) if (o["kind"], o["metadata"]["name"]) == ("Ingress",
                                                                                      "runway-models-v1-yolo"))
    assert ingress["spec"]["tls"] == [{"secretName": "wildcard-tls", "hosts": [f"yolo.{DOMAIN}"]}]


def test_without_ingress_nginx_or_a_domain_there_is_no_host_ingress():
    assert not [o for o in _agreeing({"ingress": {"enabled": True}}) if "-v1-" in o["metadata"]["name"]]
    plain = merged(HOSTED, {"ingress": {"nginxAnnotations": False}, "httpRoute": {"enabled": False}})
    rendered = render_chart(render(MODELS_JSON, "helm-values", values=plain).files["helm-values.yaml"][0])
    assert "-v1-" not in rendered["runway-models/templates/ingress.yaml"]
    assert f"<model>.{DOMAIN}{HOSTED_PREFIX}: not routed" in rendered["runway-models/templates/NOTES.txt"]
    both = render_chart(render(MODELS_JSON, "helm-values", values=HOSTED).files["helm-values.yaml"][0])
    assert "(an HTTPRoute and an Ingress per model)" in both["runway-models/templates/NOTES.txt"]
