"""Stand-alone apps: Ray Serve inside the pod for a built model; the entry's own image for a Docker-only one."""

from __future__ import annotations

import json

import pytest
import yaml

from deploy.generate import render
from deploy.serve_config import validate_serve_config
from deploy.validate import validate_objects
from tests.helpers.deploy import IM2TXT_DOCKER_ONLY, KUBE_VERSION, with_docker_gpu
from tests.helpers.paths import MODELS_JSON


def _objects(name: str, **kwargs) -> dict[str, dict]:
    docs = render(MODELS_JSON, "standalone", name, **kwargs).files[f"standalone/{name}.yaml"]
    return {o["kind"]: o for o in docs}


def test_built_model_runs_ray_serve_in_the_pod(kuberay_dir):
    objects = _objects("yolo")
    # A GPU model: a fixed pod count, no HPA (see test_operator_points).
    assert set(objects) == {"ConfigMap", "Deployment", "Service", "NetworkPolicy"}
    assert validate_objects(list(objects.values()), KUBE_VERSION, kuberay_dir).problems == []
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "ghcr.io/runway-models/runway-models:0.1.0-gpu"
    script = container["command"][-1]
    assert "ray start --head" in script and "serve run --address=auto /etc/runway-models/serve-config.yaml" in script
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1  # specs.gpu and num_gpus 0.25
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "RAY_AUTH_MODE", "value": "token"} in container["env"]
    # The pod serves a one-entry catalog: /readyz waits for this model only.
    data = objects["ConfigMap"]["data"]
    assert [e["name"] for e in json.loads(data["models.json"])] == ["yolo"]
    config = yaml.safe_load(data["serve-config.yaml"])
    assert validate_serve_config(config) == []
    assert [a["name"] for a in config["applications"]] == ["catalog", "yolo"]
    assert config["applications"][1]["deployments"][0]["num_replicas"] == 1
    assert "autoscaling_config" not in config["applications"][1]["deployments"][0]
    assert objects["Service"]["spec"]["sessionAffinity"] == "ClientIP"
    assert {p["name"] for p in objects["Service"]["spec"]["ports"]} == {"http", "metrics"}


def test_cpu_model_without_autoscaling_has_no_hpa():
    objects = _objects("object-detection")
    assert "HorizontalPodAutoscaler" not in objects
    assert objects["Deployment"]["spec"]["replicas"] == 1
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    assert "nvidia.com/gpu" not in pod["containers"][0]["resources"]["limits"]
    assert "tolerations" not in pod


def test_docker_only_entry_runs_its_own_image(kuberay_dir, raw_catalog):
    objects = _objects("im2txt")
    assert set(objects) == {"Deployment", "Service", "NetworkPolicy"}
    assert validate_objects(list(objects.values()), KUBE_VERSION, kuberay_dir).problems == []
    deployment = objects["Deployment"]
    assert deployment["metadata"]["annotations"]["runway-models/docker-only"] == IM2TXT_DOCKER_ONLY
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "runway/im2txt:cpu"
    assert container["ports"] == [{"name": "http", "containerPort": 33000, "protocol": "TCP"}]  # ExposedPorts
    assert container["readinessProbe"]["tcpSocket"] == {"port": "http"}
    assert "nvidia.com/gpu" not in container["resources"]["limits"]  # specs.gpu is false
    assert objects["Service"]["spec"]["ports"] == [{"name": "http", "port": 33100, "targetPort": "http",
                                                    "protocol": "TCP"}]


def test_docker_only_gpu_entry_and_extra_exposed_ports(write_catalog, raw_catalog, kuberay_dir):
    def edit(entries):
        entries["docker-gpu"]["options"]["ExposedPorts"]["8888/udp"] = {}
    catalog = write_catalog(edit, with_docker_gpu(raw_catalog))
    docs = render(catalog, "standalone", "docker-gpu").files["standalone/docker-gpu.yaml"]
    objects = {o["kind"]: o for o in docs}
    container = objects["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "runway/docker-gpu:gpu"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert [(p["name"], p["containerPort"], p["protocol"]) for p in container["ports"]] == \
        [("http", 33000, "TCP"), ("udp-8888", 8888, "UDP")]
    assert validate_objects(docs, KUBE_VERSION, kuberay_dir).problems == []


def test_standalone_pods_stay_out_of_the_rayservice_selectors():
    rendered = render(MODELS_JSON, "all")
    ray_selector = next(o for o in rendered.files["kuberay/services.yaml"])["spec"]["selector"]
    for path, docs in rendered.files.items():
        if path.startswith("standalone/"):
            labels = next(o for o in docs if o["kind"] == "Deployment")["spec"]["template"]["metadata"]["labels"]
            assert not all(labels.get(k) == v for k, v in ray_selector.items()), path


@pytest.mark.parametrize("name", ["openpose", "yolo", "object-detection", "im2txt", "densecap"])
def test_every_entry_has_a_valid_standalone_app(name, kuberay_dir):
    docs = render(MODELS_JSON, "standalone", name).files[f"standalone/{name}.yaml"]
    assert validate_objects(docs, KUBE_VERSION, kuberay_dir).problems == []


@pytest.mark.parametrize("values", [{}, {"weights": {"source": "pvc", "claimName": "w", "mountPath": "/w"}}])
def test_standalone_pods_carry_what_the_charts_ray_pods_do(values):
    """A stand-alone pod takes the release's image, environment, volumes and name from the chart's rendering."""
    rendered = render(MODELS_JSON, "all", "yolo", values=values)
    rayservice = rendered.files["kuberay/rayservice.yaml"][0]
    head = rayservice["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]
    pod = next(o for o in rendered.files["standalone/yolo.yaml"] if o["kind"] == "Deployment")["spec"]["template"][
        "spec"]
    container = pod["containers"][0]
    assert all(item in container["env"] for item in head["containers"][0]["env"])
    assert all(item in container["volumeMounts"] for item in head["containers"][0]["volumeMounts"])
    assert all(item in pod["volumes"] for item in head["volumes"])
    assert rendered.plan.fullname == rayservice["metadata"]["name"]
