"""Docker-only entries (no serving section: the original format's image `tag`, `port`, `options.ExposedPorts`,
`specs`) are deployed with the release and routed at /<name>/... by the same Ingress / HTTPRoute address.
models.json's im2txt runs on CPU; the GPU one is the fixture entry `docker-gpu` (tests/helpers/deploy.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.generate import render
from deploy.validate import validate_objects
from tests.helpers.deploy import EVERYTHING, KUBE_VERSION, merged, nginx_rewrite, render_chart
from tests.helpers.paths import MODELS_JSON


#: The Ingress (off by default: ingress-nginx is retired) is what routes Docker-only entries by regex.
WITH_INGRESS = {"ingress": {"enabled": True}}


def _kuberay(catalog: Path = MODELS_JSON, values: dict | None = None) -> dict[str, list[dict]]:
    return render(catalog, "kuberay", values=merged(WITH_INGRESS, values or {})).files


def _docker_objects(files) -> dict[tuple[str, str], dict]:
    return {(o["kind"], o["metadata"]["labels"]["runway-models/model"]): o
            for o in files["kuberay/docker-models.yaml"]}


def test_each_docker_only_entry_runs_its_own_image_in_the_release(kuberay_dir, docker_gpu_catalog):
    assert sorted(_docker_objects(_kuberay())) == [(kind, "im2txt") for kind in ("Deployment", "NetworkPolicy",
                                                                                  "Service")]
    files = _kuberay(docker_gpu_catalog)
    objects = _docker_objects(files)
    assert sorted(objects) == [(kind, name) for kind in ("Deployment", "NetworkPolicy", "Service")
                               for name in ("docker-gpu", "im2txt")]
    im2txt = objects[("Deployment", "im2txt")]
    assert im2txt["metadata"]["name"] == "runway-models-im2txt"
    assert im2txt["metadata"]["annotations"] == {"runway-models/docker-only": "Docker-only entry: no serving section"}
    container = im2txt["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "runway/im2txt:cpu"                    # tag
    assert container["ports"] == [{"name": "http", "containerPort": 33000, "protocol": "TCP"}]  # ExposedPorts
    assert "nvidia.com/gpu" not in container["resources"]["limits"]      # specs.gpu false
    assert objects[("Service", "im2txt")]["spec"]["ports"] == [
        {"name": "http", "port": 33100, "targetPort": "http", "protocol": "TCP"}]  # port: the original's host port
    gpu = objects[("Deployment", "docker-gpu")]["spec"]["template"]["spec"]
    assert gpu["containers"][0]["image"] == "runway/docker-gpu:gpu"
    assert gpu["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1  # specs: gpu only
    assert gpu["tolerations"][0]["key"] == "nvidia.com/gpu"
    every = [o for docs in files.values() for o in docs]
    assert validate_objects(every, KUBE_VERSION, kuberay_dir, require_crd=True).problems == []


def test_the_ingress_routes_docker_entries_at_their_name_with_the_prefix_stripped(docker_gpu_catalog):
    ingresses = {o["metadata"]["name"]: o for o in _kuberay(docker_gpu_catalog)["kuberay/ingress.yaml"]}
    assert sorted(ingresses) == ["runway-models", "runway-models-docker"]
    docker = ingresses["runway-models-docker"]
    assert docker["metadata"]["annotations"]["nginx.ingress.kubernetes.io/use-regex"] == "true"
    assert docker["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600"
    paths = docker["spec"]["rules"][0]["http"]["paths"]
    assert [(p["pathType"], p["backend"]["service"]["port"]["number"]) for p in paths] == \
        [("ImplementationSpecific", 33100), ("ImplementationSpecific", 33700)]
    assert nginx_rewrite(docker, "/im2txt/query_once") == ("runway-models-im2txt", "/query_once")
    assert nginx_rewrite(docker, "/im2txt") == ("runway-models-im2txt", "/")
    assert nginx_rewrite(docker, "/docker-gpu/socket.io/") == ("runway-models-docker-gpu", "/socket.io/")
    assert nginx_rewrite(docker, "/im2txtx/query_once") is None
    # Served models keep their exact routes on the first Ingress: one address for every entry.
    served = [p["path"] for p in ingresses["runway-models"]["spec"]["rules"][0]["http"]["paths"]]
    assert "/yolo/query_once" in served and "/densecap/query_once" in served
    assert not any(p.startswith(("/im2txt", "/docker-gpu")) for p in served)


def test_the_httproute_routes_docker_entries_with_a_prefix_rewrite(kuberay_dir, docker_gpu_catalog):
    files = _kuberay(docker_gpu_catalog, EVERYTHING)
    route = files["kuberay/httproute.yaml"][0]
    docker_rules = [r for r in route["spec"]["rules"] if r.get("filters")]
    assert [r["matches"] for r in docker_rules] == [[{"path": {"type": "PathPrefix", "value": "/im2txt"}}],
                                                    [{"path": {"type": "PathPrefix", "value": "/docker-gpu"}}]]
    assert docker_rules[0]["filters"] == [{"type": "URLRewrite", "urlRewrite": {
        "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}}}]
    assert docker_rules[0]["backendRefs"] == [{"name": "runway-models-rm-im2txt", "port": 33100}]
    assert validate_objects([route], KUBE_VERSION, kuberay_dir).problems == []


def test_ray_selectors_leave_docker_pods_alone(busy_catalog):
    files = render(busy_catalog, "kuberay", values=WITH_INGRESS).files
    assert files["kuberay/pdb.yaml"]
    docker_pods = [o["spec"]["template"]["metadata"]["labels"] for o in files["kuberay/docker-models.yaml"]
                   if o["kind"] == "Deployment"]
    selectors = [files["kuberay/services.yaml"][0]["spec"]["selector"],
                 files["kuberay/networkpolicy.yaml"][0]["spec"]["podSelector"]["matchLabels"],
                 files["kuberay/pdb.yaml"][0]["spec"]["selector"]["matchLabels"]]
    for labels in docker_pods:
        for selector in selectors:
            assert not all(labels.get(k) == v for k, v in selector.items()), (labels, selector)


def test_without_ingress_nginx_the_notes_say_how_to_route_them():
    plain_ingress = merged(WITH_INGRESS, {"ingress": {"nginxAnnotations": False}})
    values = render(MODELS_JSON, "helm-values", values=plain_ingress).files[
        "helm-values.yaml"][0]
    rendered = render_chart(values)
    ingress_docs = [d for d in rendered["runway-models/templates/ingress.yaml"].split("---") if "kind:" in d]
    assert len(ingress_docs) == 1
    assert "use the HTTPRoute" in rendered["runway-models/templates/NOTES.txt"]


@pytest.mark.parametrize("values", [{}, {"networkPolicy": {"enabled": False}}])
def test_standalone_file_of_a_docker_entry_is_the_releases_objects(values):
    rendered = render(MODELS_JSON, "all", values=merged(values))
    release = [o for o in rendered.files["kuberay/docker-models.yaml"]
               if o["metadata"]["labels"]["runway-models/model"] == "im2txt"]
    assert rendered.files["standalone/im2txt.yaml"] == release
    assert ("NetworkPolicy" in {o["kind"] for o in release}) == (values == {})
