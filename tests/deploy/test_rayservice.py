"""The RayService against the KubeRay 1.7.0 CRD (defaults applied, unknown fields rejected), and its shape."""

from __future__ import annotations

import copy

import pytest
import yaml

from deploy.crd import apply_defaults, to_json_schema, validate_custom_resource, version_schema, load_crd
from deploy.generate import render
from deploy.validate import validate_objects
from tests.helpers.deploy import EVERYTHING, KUBE_VERSION
from tests.helpers.paths import MODELS_JSON


@pytest.fixture(scope="module")
def rendered():
    return render(MODELS_JSON, "kuberay")


@pytest.fixture
def rayservice(rendered) -> dict:
    return copy.deepcopy(rendered.files["kuberay/rayservice.yaml"][0])


def _workers(rs: dict) -> dict[str, dict]:
    return {g["groupName"]: g for g in rs["spec"]["rayClusterConfig"]["workerGroupSpecs"]}


def test_validates_against_the_kuberay_crd_with_defaults(rayservice, kuberay_dir):
    defaulted, problems = validate_custom_resource(rayservice, kuberay_dir / "ray.io_rayservices.yaml", "v1")
    assert problems == []
    # The CRD's defaults were applied before validating, as the API server does.
    worker = defaulted["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
    assert worker["numOfHosts"] == 1
    port = defaulted["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]["ports"][0]
    assert port["protocol"] == "TCP"
    assert validate_objects([rayservice], KUBE_VERSION, kuberay_dir, require_crd=True).problems == []


@pytest.mark.parametrize("path, value, expected", [
    (["spec", "rayClusterConfig", "bogus"], 1, "'bogus' was unexpected"),
    (["spec", "rayClusterConfig", "headGroupSpec", "template", "spec", "containers", 0, "imagePullPolcy"], "x",
     "'imagePullPolcy' was unexpected"),
    (["spec", "rayClusterConfig", "workerGroupSpecs", 0, "minReplicas"], "one", "is not of type 'integer'"),
    (["spec", "rayClusterConfig", "workerGroupSpecs", 0, "template", "spec", "containers", 0, "resources",
      "limits", "cpu"], "lots", "does not match"),
    (["spec", "rayClusterConfig", "authOptions", "mode"], "tokens", "is not one of"),
    (["spec", "upgradeStrategy", "type"], "Rolling", "upgradeStrategy.type"),
    (["metadata", "labels", "app.kubernetes.io/version"], "0.1.0 beta", "label value"),
    (["spec", "rayClusterConfig", "workerGroupSpecs", 0, "maxReplicas"], 0, "minReplicas"),
])
def test_invalid_rayservices_are_rejected(rayservice, kuberay_dir, path, value, expected):
    node = rayservice
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    problems = validate_objects([rayservice], KUBE_VERSION, kuberay_dir, require_crd=True).problems
    assert any(expected in p for p in problems), problems


def test_serve_config_inside_is_checked(rayservice, kuberay_dir):
    config = yaml.safe_load(rayservice["spec"]["serveConfigV2"])
    config["applications"][1]["deployments"][0]["num_replica"] = 2
    rayservice["spec"]["serveConfigV2"] = yaml.safe_dump(config)
    problems = validate_objects([rayservice], KUBE_VERSION, kuberay_dir).problems
    assert any("num_replica" in p for p in problems), problems


def test_pod_templates_are_checked_as_core_pod_templates(rayservice, kuberay_dir):
    container = rayservice["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    container["ports"].append({"name": "serve", "containerPort": 8000})  # duplicate port
    problems = validate_objects([rayservice], KUBE_VERSION, kuberay_dir).problems
    assert any("duplicate" in p for p in problems), problems


def test_crd_conversion_is_strict_and_knows_int_or_string(kuberay_dir):
    source = version_schema(load_crd(str(kuberay_dir / "ray.io_rayservices.yaml")), "v1")
    strict = to_json_schema(source)
    spec = strict["properties"]["spec"]
    assert spec["additionalProperties"] is False
    limits = spec["properties"]["rayClusterConfig"]["properties"]["workerGroupSpecs"]["items"]["properties"][
        "template"]["properties"]["spec"]["properties"]["containers"]["items"]["properties"]["resources"][
        "properties"]["limits"]["additionalProperties"]
    assert {"type": "integer"} in limits["anyOf"] and {"type": "string"} in limits["anyOf"]
    assert apply_defaults(source, {"spec": {"rayClusterConfig": {"workerGroupSpecs": [{}]}}})["spec"][
        "rayClusterConfig"]["workerGroupSpecs"][0]["replicas"] == 0


def test_head_hosts_no_model_replicas_and_has_probes(rayservice):
    head = rayservice["spec"]["rayClusterConfig"]["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"
    container = head["template"]["spec"]["containers"][0]
    assert container["name"] == "ray-head"
    assert {p["name"] for p in container["ports"]} >= {"serve", "metrics", "dashboard", "gcs-server"}
    assert container["livenessProbe"]["httpGet"]["path"] == "/api/gcs_healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/api/gcs_healthz"
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert head["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    assert {"name": "RUNWAY_SHARED", "value": "/models"} in container["env"]


def test_cpu_and_gpu_worker_groups_follow_the_catalog(rayservice):
    workers = _workers(rayservice)
    assert set(workers) == {"cpu", "gpu"}
    gpu = workers["gpu"]
    # yolo (0.25 GPU, 1..2 replicas) and densecap (0.5 GPU) fit one 1-GPU pod; openpose runs on CPU (its family
    # cannot use a GPU).
    assert (gpu["minReplicas"], gpu["maxReplicas"], gpu["replicas"]) == (1, 1, 1)
    spec = gpu["template"]["spec"]
    assert spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert spec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert spec["containers"][0]["readinessProbe"]["httpGet"] == {"path": "/-/healthz", "port": 8000}
    cpu = workers["cpu"]
    assert "nvidia.com/gpu" not in cpu["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert (cpu["minReplicas"], cpu["maxReplicas"]) == (1, 1)


def test_gpu_pods_scale_with_max_replicas(write_catalog):
    def edit(entries):
        entries["yolo"]["serving"]["autoscaling"] = {"min_replicas": 1, "max_replicas": 8}
        entries["yolo"]["serving"]["resources"]["num_gpus"] = 0.5
    rs = render(write_catalog(edit), "kuberay").files["kuberay/rayservice.yaml"][0]
    gpu = _workers(rs)["gpu"]
    # min: yolo 0.5 + densecap 0.5 -> 1 pod; max: 8 x 0.5 = 4 GPUs for yolo, densecap's 0.5 -> 5 one-GPU pods.
    assert (gpu["minReplicas"], gpu["maxReplicas"]) == (1, 5)


def test_no_gpu_group_without_gpu_models(write_catalog):
    def edit(entries):
        for entry in entries.values():
            entry["specs"] = {"cpu": True, "gpu": False}
    rs = render(write_catalog(edit), "kuberay").files["kuberay/rayservice.yaml"][0]
    assert set(_workers(rs)) == {"cpu"}


def test_upgrade_strategy_auth_and_docker_only_annotation(rayservice):
    spec = rayservice["spec"]
    assert spec["upgradeStrategy"] == {"type": "NewCluster"}
    assert spec["rayClusterConfig"]["authOptions"] == {"mode": "token"}
    assert spec["rayClusterConfig"]["rayVersion"] == "2.60.0"
    assert spec["serveService"]["metadata"]["name"] == "runway-models-serve"
    assert rayservice["metadata"]["annotations"] == {"runway-models/docker-only": "im2txt"}
    apps = [a["name"] for a in yaml.safe_load(spec["serveConfigV2"])["applications"]]
    assert "im2txt" not in apps and "densecap" in apps


def test_every_kuberay_object_validates_with_everything_on(kuberay_dir, busy_catalog):
    rendered = render(busy_catalog, "kuberay", values=EVERYTHING)
    kinds = sorted(o["kind"] for o in rendered.objects())
    # The Ray cluster's objects (a PodDisruptionBudget for the CPU group, which keeps 2 pods), and a Deployment,
    # Service and NetworkPolicy per Docker-only entry (im2txt, the docker-gpu fixture) routed by a second Ingress;
    # gRPC's Service, Ingress and GRPCRoute.
    assert kinds == ["Deployment"] * 2 + ["GRPCRoute", "HTTPRoute"] + ["Ingress"] * 3 + ["NetworkPolicy"] * 3 + [
        "PodDisruptionBudget", "RayService"] + ["Service"] * 4 + ["ServiceMonitor"]
    report = validate_objects(rendered.objects(), KUBE_VERSION, kuberay_dir, require_crd=True)
    assert report.problems == []
    assert any("KubeRay 1.7.0 CRD" in n for n in report.notes)
    assert any("Kubernetes 1.33 (strict)" in n for n in report.notes)


def test_every_ray_container_points_the_proxy_at_the_middlewares_and_bounds_malloc_arenas(rayservice):
    from serve.heap import MALLOC_ENV
    from serve.protocols.proxy import PROXY_CALLBACK, PROXY_CALLBACK_ENV

    cluster = rayservice["spec"]["rayClusterConfig"]
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    for group in groups:
        env = {e["name"]: e.get("value") for e in group["template"]["spec"]["containers"][0]["env"]}
        assert env[PROXY_CALLBACK_ENV] == PROXY_CALLBACK
        assert {name: env.get(name) for name in MALLOC_ENV} == MALLOC_ENV


@pytest.mark.parametrize("front", ["python", "haproxy"])
def test_the_serve_front_reaches_every_ray_container(front):
    from serve.front import HAPROXY_ENV, front_env

    rs = render(MODELS_JSON, "kuberay", sets=[f"serve.front={front}"]).files["kuberay/rayservice.yaml"][0]
    cluster = rs["spec"]["rayClusterConfig"]
    for group in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]:
        env = {e["name"]: e.get("value") for e in group["template"]["spec"]["containers"][0]["env"]}
        assert env.get(HAPROXY_ENV, "0") == front_env(front)[HAPROXY_ENV]
