"""`generate`: files per target, errors naming entry and field, and --out never half-written."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest
import yaml

from deploy import DeployError
from deploy.generate import generate
from deploy.cli import add_parser, main
from deploy.output import MARKER
from tests.helpers.deploy import IM2TXT_DOCKER_ONLY, tree, with_docker_gpu
from tests.helpers.paths import MODELS_JSON


def _all_files(out: Path) -> set[str]:
    return {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}


def test_all_targets(tmp_path):
    out = tmp_path / "out"
    result = generate(MODELS_JSON, out, require_crd=True)
    assert _all_files(out) == {
        MARKER, "serve-config.yaml", "helm-values.yaml",
        "kuberay/rayservice.yaml", "kuberay/services.yaml", "kuberay/networkpolicy.yaml", "kuberay/docker-models.yaml",
        *(f"standalone/{n}.yaml" for n in ("im2txt", "openpose", "yolo", "object-detection", "movenet", "densecap")),
    }
    assert result.skipped == [("im2txt", IM2TXT_DOCKER_ONLY)]  # densecap is served (not_available until its weights)
    assert any("KubeRay 1.7.0 CRD" in note for note in result.notes)
    header = (out / "kuberay/rayservice.yaml").read_text().splitlines()[:5]
    assert any("Docker-only entries" in line and "im2txt" in line and "densecap" not in line for line in header)
    for path in out.rglob("*.yaml"):
        assert list(yaml.safe_load_all(path.read_text()))
    assert "&id" not in (out / "kuberay/rayservice.yaml").read_text()  # no YAML anchors


@pytest.mark.parametrize("target, expected", [
    ("serve-config", {"serve-config.yaml"}),
    ("helm-values", {"helm-values.yaml"}),
    # No Ingress (off by default) and no PodDisruptionBudget (every pool keeps one pod) with the defaults.
    ("kuberay", {"kuberay/rayservice.yaml", "kuberay/services.yaml", "kuberay/networkpolicy.yaml",
                 "kuberay/docker-models.yaml"}),
])
def test_single_targets(tmp_path, target, expected):
    generate(MODELS_JSON, tmp_path / "out", target)
    assert _all_files(tmp_path / "out") == expected | {MARKER}


def test_optional_objects_follow_the_values(tmp_path):
    generate(MODELS_JSON, tmp_path / "out", "kuberay",
             sets=["monitoring.serviceMonitor.enabled=true", "httpRoute.enabled=true",
                   "httpRoute.parentRefs=[{name: gw}]", "networkPolicy.enabled=false"])
    files = _all_files(tmp_path / "out")
    assert {"kuberay/servicemonitor.yaml", "kuberay/httproute.yaml"} <= files
    assert "kuberay/networkpolicy.yaml" not in files


def test_helm_values_carry_user_values_and_generated_keys(tmp_path, docker_gpu_catalog):
    user = tmp_path / "mine.yaml"
    user.write_text("ingress:\n  host: models.example.com\nray:\n  gpuPool:\n    gpusPerPod: 2\n")
    generate(docker_gpu_catalog, tmp_path / "out", "helm-values", values_files=[user])
    values = yaml.safe_load((tmp_path / "out/helm-values.yaml").read_text())
    assert values["ingress"]["host"] == "models.example.com"
    assert values["ray"]["gpuPool"]["gpusPerPod"] == 2
    assert [m["name"] for m in values["models"]] == ["openpose", "yolo", "object-detection", "movenet", "densecap"]
    assert values["models"][1]["httpPath"] == "/yolo/query_once"
    assert values["models"][1]["socketPath"] == "/yolo/socket.io"
    assert [(d["name"], d["image"], d["gpu"]) for d in values["dockerModels"]] == \
        [("im2txt", "runway/im2txt:cpu", False), ("docker-gpu", "runway/docker-gpu:gpu", True)]
    assert values["ingress"]["maxBodySize"] == "11m"  # 8 MiB images, base64 in JSON
    assert (values["ray"]["gpuPool"]["minReplicas"], values["ray"]["gpuPool"]["maxReplicas"]) == (1, 1)


# --- bad catalogs: an error naming the entry and the field, and --out untouched ------------------------------


def _no_gpu(entries):  # the catalog is fine; the values disable the GPU pool (see BAD below)
    pass


def _route_clash(entries):
    entries["yolo"]["query"]["http"]["route"] = "/socket.io"


def _duplicate_name(entries):
    entries["openpose"]["name"] = "yolo"


def _not_dns(entries):
    entries["yolo"]["name"] = "Yolo_V2"


def _port_out_of_range(entries):
    entries["yolo"]["port"] = 70000


def _exposed_port_out_of_range(entries):
    entries["docker-gpu"]["options"]["ExposedPorts"] = {"33700/tcp": {}, "99999/tcp": {}}


def _no_tag(entries):
    del entries["docker-gpu"]["tag"]


def _bad_tag(entries):
    entries["im2txt"]["tag"] = "Runway/IM2TXT latest"


def _gpu_does_not_fit(entries):
    entries["yolo"]["serving"]["resources"]["num_gpus"] = 2


def _bad_route_path(entries):
    entries["object-detection"]["query"]["http"]["route"] = "/a/../b"


BAD = [
    (_no_gpu, ["ray.gpuPool.enabled=false"], ["yolo.specs.gpu", "densecap.specs.gpu", "docker-gpu.specs.gpu"]),
    (_route_clash, [], ["yolo.query.http.route"]),
    (_duplicate_name, [], ["yolo.name"]),
    (_not_dns, [], ["(Yolo_V2).name"]),
    (_port_out_of_range, [], ["(yolo).port"]),
    (_exposed_port_out_of_range, [], ["(docker-gpu).options.ExposedPorts"]),
    (_no_tag, [], ["docker-gpu.tag"]),
    (_bad_tag, [], ["im2txt.tag"]),
    (_gpu_does_not_fit, [], ["yolo.serving.resources.num_gpus"]),
    (_bad_route_path, [], ["object-detection.query.http.route"]),
]


@pytest.mark.parametrize("edit, sets, expected", BAD, ids=[b[0].__name__.strip("_") for b in BAD])
def test_bad_catalog_fails_naming_entry_and_field_and_leaves_out_untouched(tmp_path, write_catalog, raw_catalog,
                                                                            edit, sets, expected):
    out = tmp_path / "out"
    generate(MODELS_JSON, out, "all")  # a previous, good generation
    before = tree(out)
    catalog = write_catalog(edit, with_docker_gpu(raw_catalog))  # Docker-only entries on CPU and GPU
    with pytest.raises(DeployError) as caught:
        generate(catalog, out, "all", sets=sets)
    for needle in expected:
        assert any(needle in problem for problem in caught.value.problems), (needle, caught.value.problems)
    assert tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["catalog", "out"]  # no staging folders left


def test_bad_catalog_creates_no_out(tmp_path, write_catalog, raw_catalog):
    with pytest.raises(DeployError):
        generate(write_catalog(_no_tag, with_docker_gpu(raw_catalog)), tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()


def test_failure_while_writing_leaves_out_untouched(tmp_path, monkeypatch):
    out = tmp_path / "out"
    generate(MODELS_JSON, out, "all")
    before = tree(out)
    calls = {"n": 0}
    real = Path.write_text

    def flaky(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", flaky)
    with pytest.raises(OSError, match="disk full"):
        generate(MODELS_JSON, out, "all")
    assert tree(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_refuses_a_folder_it_did_not_write(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(DeployError, match="not written by runway-models generate"):
        generate(MODELS_JSON, out, "serve-config")
    assert tree(out) == {"notes.txt": b"keep me"}


def test_regeneration_replaces_the_previous_output(tmp_path):
    out = tmp_path / "out"
    generate(MODELS_JSON, out, "all")
    generate(MODELS_JSON, out, "serve-config")
    assert _all_files(out) == {MARKER, "serve-config.yaml"}


def test_bad_values_name_the_key(tmp_path):
    with pytest.raises(DeployError) as caught:
        generate(MODELS_JSON, tmp_path / "out", sets=["ray.gpuPool.gpusPerPod=0", "ingress.enabeld=true"])
    text = "\n".join(caught.value.problems)
    assert "values.ray.gpuPool.gpusPerPod" in text and "values.ingress.enabeld" in text


def test_standalone_needs_a_known_entry(tmp_path):
    with pytest.raises(DeployError, match="no such entry"):
        generate(MODELS_JSON, tmp_path / "out", "standalone", standalone="nope")


def test_kube_version_must_be_recent(tmp_path):
    with pytest.raises(DeployError, match="1.30 or newer"):
        generate(MODELS_JSON, tmp_path / "out", kube_version="1.29")


def test_cli_adds_one_subcommand(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="runway-models")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["generate", str(MODELS_JSON), "--out", str(tmp_path / "out"), "--target", "kuberay"])
    assert args.func(args) == 0
    captured = capsys.readouterr()
    assert "kuberay/rayservice.yaml" in captured.out
    assert "im2txt is not served by Ray Serve" in captured.err


def test_cli_error_exit_code(tmp_path, write_catalog, raw_catalog, capsys):
    code = main(["generate", str(write_catalog(_no_tag, with_docker_gpu(raw_catalog))), "--out", str(tmp_path / "out")])
    assert code == 2
    assert "docker-gpu.tag" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_generated_names_are_stable(tmp_path):
    """Same input, same bytes: the output is deterministic (no timestamps)."""
    generate(MODELS_JSON, tmp_path / "a")
    generate(MODELS_JSON, tmp_path / "b")
    assert tree(tmp_path / "a") == tree(tmp_path / "b")
    assert os.path.isdir(tmp_path / "a" / "standalone")


def test_the_values_example_in_the_docs_generates(tmp_path):
    import re

    from tests.helpers.paths import REPO

    doc = (REPO / "docs" / "deploy.md").read_text()
    example = re.search(r"```yaml\n(# my-values.yaml\n.*?)```", doc, re.S)
    assert example, "docs/deploy.md lost its my-values.yaml example"
    values = tmp_path / "my-values.yaml"
    values.write_text(example.group(1))
    generate(MODELS_JSON, tmp_path / "out", "all", values_files=[values], require_crd=True)
    rendered = yaml.safe_load((tmp_path / "out/kuberay/servicemonitor.yaml").read_text())
    assert rendered["metadata"]["labels"]["release"] == "kube-prometheus-stack"
