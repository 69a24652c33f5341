"""The Open Inference Protocol published by the deployment: `/v2` by prefix through the Ingress and the HTTPRoute,
and, with `grpc.enabled`, Serve's gRPC proxies (grpc_options, a port on every Ray node, a Service, a gRPC Ingress
and a GRPCRoute, the NetworkPolicies); with it off, nothing gRPC is rendered."""

from __future__ import annotations

import importlib

import pytest
import yaml

from deploy import DeployError
from deploy.generate import check, render
from deploy.serve_config import validate_serve_config
from serve.catalog import V2_PATH
from serve.protocols.v2_grpc import APPLICATION_METADATA, DEFAULT_GRPC_PORT, GRPC_SERVICE, SERVICER_FUNCTION
from tests.helpers.deploy import render_chart
from tests.helpers.paths import MODELS_JSON

ROUTES = {"ingress": {"enabled": True, "host": "models.example.com",
                      "tls": {"enabled": True, "secretName": "models-tls"}},
          "httpRoute": {"enabled": True, "parentRefs": [{"name": "gw", "namespace": "gateways"}],
                        "hostnames": ["models.example.com"]}}
GRPC_PATH = f"/{GRPC_SERVICE}"


def _render(grpc: bool, **extra):
    values = {**ROUTES, "grpc": {"enabled": grpc}, **extra}
    return render(MODELS_JSON, "all", values=values)


@pytest.fixture(scope="module")
def with_grpc():
    return _render(True)


@pytest.fixture(scope="module")
def without_grpc():
    return _render(False)


def _objects(rendered, prefix: str = "kuberay/") -> dict[tuple[str, str], dict]:
    return {(o["kind"], o["metadata"]["name"]): o for path, docs in rendered.files.items()
            if path.startswith(prefix) for o in docs}


def _serve_config(rendered) -> dict:
    rayservice = _objects(rendered)[("RayService", "runway-models")]
    return yaml.safe_load(rayservice["spec"]["serveConfigV2"])


def _containers(rendered) -> list[dict]:
    cluster = _objects(rendered)[("RayService", "runway-models")]["spec"]["rayClusterConfig"]
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    return [g["template"]["spec"]["containers"][0] for g in groups]


def test_the_runtimes_grpc_constants_are_what_ray_and_tritonclient_use():
    """The chart's defaults come from serve.protocols.v2_grpc; these are the facts they stand for."""
    from ray.serve._private.constants import DEFAULT_GRPC_PORT as RAY_DEFAULT
    from tritonclient.grpc import service_pb2

    assert DEFAULT_GRPC_PORT == RAY_DEFAULT
    assert service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name == GRPC_SERVICE
    module, _, function = SERVICER_FUNCTION.rpartition(".")
    assert callable(getattr(importlib.import_module(module), function))


def test_v2_is_routed_by_prefix_by_the_ingress_and_the_httproute(without_grpc):
    """The catalog app's /v2 and each model's own /<model>/v2 (one hop)."""
    objects = _objects(without_grpc)
    prefixes = [V2_PATH] + [m.entry.v2_path for m in without_grpc.plan.served]
    assert "/yolo/v2" in prefixes
    paths = [(p["path"], p["pathType"]) for p in
             objects[("Ingress", "runway-models")]["spec"]["rules"][0]["http"]["paths"]]
    matches = [m["path"] for rule in objects[("HTTPRoute", "runway-models")]["spec"]["rules"]
               for m in rule["matches"]]
    for prefix in prefixes:
        assert (prefix, "Prefix") in paths and {"type": "PathPrefix", "value": prefix} in matches, prefix


def test_grpc_enabled_validates_everything_including_rays_schema(with_grpc):
    assert check(with_grpc, require_crd=True)
    config = _serve_config(with_grpc)
    assert config["grpc_options"] == {"port": DEFAULT_GRPC_PORT, "grpc_servicer_functions": [SERVICER_FUNCTION]}
    assert validate_serve_config(config) == []
    from ray.serve.schema import ServeDeploySchema

    parsed = ServeDeploySchema.model_validate(config).grpc_options
    assert (parsed.port, parsed.grpc_servicer_functions) == (DEFAULT_GRPC_PORT, [SERVICER_FUNCTION])
    assert with_grpc.files["serve-config.yaml"][0]["grpc_options"] == config["grpc_options"]


def test_every_ray_node_declares_the_grpc_port_and_a_service_selects_healthy_proxies(with_grpc):
    for container in _containers(with_grpc):
        assert {"name": "grpc", "containerPort": DEFAULT_GRPC_PORT} in container["ports"], container["name"]
    service = _objects(with_grpc)[("Service", "runway-models-grpc")]["spec"]
    assert service["ports"] == [{"name": "grpc", "port": DEFAULT_GRPC_PORT, "targetPort": "grpc",
                                 "protocol": "TCP", "appProtocol": "grpc"}]
    # The pods KubeRay's serve Service selects (a healthy Serve proxy), of this release only.
    assert service["selector"] == {"app.kubernetes.io/name": "runway-models",
                                   "app.kubernetes.io/instance": "runway-models", "ray.io/serve": "true"}


def test_the_grpc_ingress_and_grpcroute_send_the_service_to_the_grpc_port(with_grpc):
    objects = _objects(with_grpc)
    ingress = objects[("Ingress", "runway-models-grpc")]
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"] == "GRPC"
    assert ingress["spec"]["tls"] == [{"secretName": "models-tls", "hosts": ["models.example.com"]}]
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "models.example.com"
    assert rule["http"]["paths"] == [{"path": GRPC_PATH, "pathType": "Prefix", "backend": {"service": {
        "name": "runway-models-grpc", "port": {"number": DEFAULT_GRPC_PORT}}}}]
    route = objects[("GRPCRoute", "runway-models")]["spec"]
    assert route["parentRefs"] == [{"name": "gw", "namespace": "gateways"}]
    assert route["hostnames"] == ["models.example.com"]
    assert route["rules"] == [{"matches": [{"method": {"type": "Exact", "service": GRPC_SERVICE}}],
                               "backendRefs": [{"name": "runway-models-grpc", "port": DEFAULT_GRPC_PORT}]}]


def test_network_policies_admit_the_grpc_port_from_the_ingress_and_gateway_peers(with_grpc):
    objects = _objects(with_grpc)
    rules = objects[("NetworkPolicy", "runway-models")]["spec"]["ingress"]
    gateway = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gateways"}}}
    (peers_rule,) = [r for r in rules if gateway in r["from"]]
    assert peers_rule["ports"] == [{"protocol": "TCP", "port": 8000}, {"protocol": "TCP", "port": DEFAULT_GRPC_PORT}]
    standalone = _objects(with_grpc, "standalone/yolo.yaml")
    assert {"protocol": "TCP", "port": DEFAULT_GRPC_PORT} in \
        standalone[("NetworkPolicy", "runway-models-yolo")]["spec"]["ingress"][0]["ports"]
    ports = standalone[("Service", "runway-models-yolo")]["spec"]["ports"]
    assert {"name": "grpc", "port": DEFAULT_GRPC_PORT, "targetPort": "grpc", "protocol": "TCP",
            "appProtocol": "grpc"} in ports
    config = yaml.safe_load(standalone[("ConfigMap", "runway-models-yolo")]["data"]["serve-config.yaml"])
    assert config["grpc_options"]["port"] == DEFAULT_GRPC_PORT


def test_grpc_disabled_renders_nothing_grpc(without_grpc):
    assert "grpc_options" not in _serve_config(without_grpc)
    objects = _objects(without_grpc) | _objects(without_grpc, "standalone/")
    assert not [key for key in objects if "grpc" in key[1].lower() or key[0] == "GRPCRoute"]
    text = yaml.safe_dump([o for o in objects.values()])
    assert "grpc" not in text.lower() and str(DEFAULT_GRPC_PORT) not in text


def test_the_grpc_port_may_not_take_another_port():
    with pytest.raises(DeployError) as caught:
        _render(True, serve={"port": DEFAULT_GRPC_PORT})
    assert caught.value.problems == [f"values.grpc.port: {DEFAULT_GRPC_PORT} is already values.serve.port"]


def test_notes_say_which_metadata_names_the_model(with_grpc):
    values = with_grpc.files["helm-values.yaml"][0]
    notes = render_chart(values)["runway-models/templates/NOTES.txt"]
    assert f"{APPLICATION_METADATA}=<model>" in notes and "svc/runway-models-grpc" in notes
