"""Catalog schema: the original format loads unchanged, every kind of bad catalog names entry and field."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from serve.catalog import CatalogError, catalog_json_schema, load_catalog, parse_catalog
from serve.cli import main

REPO = Path(__file__).resolve().parents[2]
ORIGINAL = json.loads((REPO / "tests/fixtures/im2txt_original.json").read_text())


def yolo_entry() -> dict:
    return copy.deepcopy(next(e for e in json.loads((REPO / "models.json").read_text()) if e["name"] == "yolo"))


def problems_of(raw) -> list[str]:
    with pytest.raises(CatalogError) as info:
        parse_catalog(raw)
    return info.value.problems


def test_original_im2txt_entry_validates_unchanged():
    """The fixture is the original entry as the original repository documented it (../shared/RUNWAY-FORMAT.md):
    string port, routes and namespace without the slash, lower-case method, size as a pair."""
    catalog = parse_catalog([ORIGINAL])
    entry = catalog.entries[0]
    assert entry.serving is None
    assert entry.port == 33100
    assert (entry.query.http.route, entry.query.http.method, entry.query.http.type) == ("/query_once", "POST", "json")
    assert entry.query.socket.namespace == "/query"
    assert entry.http_path == "/im2txt/query_once"
    assert entry.query.format.data == "data:image/jpg;base64,"  # used verbatim by clients: the comma stays
    assert entry.size == "2.19 GB"
    assert entry.options.container_ports() == [(33000, "TCP")]
    assert entry.options.model_dump(exclude_none=True, by_alias=True) == ORIGINAL["options"]
    assert entry.description.licence == "Apache-2.0" and entry.description.first.startswith("Generates")
    assert entry.inputs == ["Image", "Video"]


def test_docker_only_reason_says_what_to_do():
    """GET / lists a Docker-only entry as not_available with this reason: the image, the docker run line (the
    original's host port and the container's exposed port) and that the local server runs no containers."""
    reason = parse_catalog([ORIGINAL]).entries[0].unservable_reason
    assert reason.startswith("Docker-only entry: run its image runway/im2txt:latest with Docker")
    assert "docker run -p 33100:33000 runway/im2txt:latest" in reason and "no Docker engine" in reason
    untagged = copy.deepcopy(ORIGINAL)
    del untagged["tag"]
    assert "without an image tag" in parse_catalog([untagged]).entries[0].unservable_reason


@pytest.mark.parametrize("field, written, normal", [
    (("query", "http", "route"), "/query_once", "/query_once"),
    (("query", "http", "method"), "Post", "POST"),
    (("query", "http", "type"), "json", "json"),
    (("query", "socket", "namespace"), "/query", "/query"),
    (("query", "format", "data"), "data:image/jpeg;base64", "data:image/jpeg;base64,"),
    (("size",), "2.19 GB", "2.19 GB"),
    (("port",), 33100, 33100),
])
def test_both_conventions_load_as_one_form(field, written, normal):
    raw = copy.deepcopy(ORIGINAL)
    node = raw
    for key in field[:-1]:
        node = node[key]
    node[field[-1]] = written
    value = parse_catalog([raw]).entries[0]
    for key in field:
        value = getattr(value, key)
    assert value == normal


@pytest.mark.parametrize("field, value, message", [
    (("query", "http", "route"), "query once", "String should match pattern"),
    (("query", "http", "method"), "fetch", "Input should be 'POST', 'GET' or 'PUT'"),
    (("query", "format", "data"), "data:text/plain;base64,", "String should match pattern"),
    (("size",), ["2.19"], "[value, unit] pair"),
    (("options", "ExposedPorts"), {"http": {}}, "is not <port>/<tcp|udp|sctp>"),
    (("description", "licence"), 3, "Input should be a valid string"),
    (("inputs",), [{"name": "image"}], "Input should be a valid string"),
])
def test_what_is_really_wrong_is_still_refused(field, value, message):
    raw = copy.deepcopy(ORIGINAL)
    node = raw
    for key in field[:-1]:
        node = node[key]
    node[field[-1]] = value
    problems = problems_of([raw])
    where = "entry 0 (im2txt)." + ".".join(field)
    assert any(p.startswith(where) and message in p for p in problems), problems


def test_repository_catalog_validates_with_weights(shared, capsys):
    catalog = load_catalog(REPO / "models.json", check_weights=True)
    assert {"im2txt", "openpose", "yolo", "object-detection", "densecap"} <= set(catalog.names)
    # DenseCap's released checkpoint (1.1 GB, download_on_load false) is not an error where it is absent: the
    # validator says where to put it, and the server reports densecap not_available until then.
    assert main(["validate", str(REPO / "models.json")]) == 0
    absent = not (shared / "weights/densecap/densecap-pretrained-vgg16.t7").is_file()
    out = capsys.readouterr().out
    assert ("densecap.serving.weights.checkpoint: not at" in out and "(1.1 GB)" in out) == absent, out


def test_committed_json_schema_is_generated_from_pydantic():
    assert json.loads((REPO / "models.schema.json").read_text()) == catalog_json_schema()


def test_duplicate_names_ports_and_routes_are_named():
    twin = copy.deepcopy(ORIGINAL)
    problems = problems_of([ORIGINAL, twin])
    assert any(p.startswith("im2txt.name:") and "already used" in p for p in problems)
    assert any(p.startswith("im2txt.port:") for p in problems)
    assert any(p.startswith("im2txt.query.http.route:") for p in problems)


def test_wrong_types_name_entry_and_field():
    bad = copy.deepcopy(ORIGINAL)
    bad["port"] = "not-a-port"
    bad["specs"]["gpu"] = "maybe"
    problems = problems_of([bad])
    assert any(p.startswith("entry 0 (im2txt).port:") for p in problems)
    assert any(p.startswith("entry 0 (im2txt).specs.gpu:") for p in problems)


def test_unknown_implementation_and_unknown_serving_key():
    bad = yolo_entry()
    bad["serving"]["implementation"] = "yolo-v99"
    bad["serving"]["batchsize"] = 4
    problems = problems_of([bad])
    assert any("serving.implementation" in p and "unknown implementation 'yolo-v99'" in p for p in problems)
    assert any("serving.batchsize" in p and "Extra inputs are not permitted" in p for p in problems)


def test_batch_larger_than_concurrency_is_refused():
    bad = yolo_entry()
    bad["serving"]["max_ongoing_requests"] = 2
    assert any("batches could never fill" in p for p in problems_of([bad]))


def test_missing_weights_file_is_named(tmp_path):
    """A missing local file is an error unless the entry also says where to download it from."""
    bad = yolo_entry()
    bad["serving"]["weights"]["weights"] = {"path": str(tmp_path / "nowhere.weights"), "format": "darknet-weights"}
    path = tmp_path / "models.json"
    path.write_text(json.dumps([bad]))
    load_catalog(path)  # structure is fine
    with pytest.raises(CatalogError) as info:
        load_catalog(path, check_weights=True)
    assert info.value.problems == [f"yolo.serving.weights.weights.path: file not found: {tmp_path / 'nowhere.weights'}"]


def test_cli_validate_exit_codes(tmp_path, capsys):
    good = tmp_path / "good.json"
    good.write_text(json.dumps([ORIGINAL]))
    assert main(["validate", str(good)]) == 0
    broken = tmp_path / "broken.json"
    broken.write_text('[{"name": "x",')
    assert main(["validate", str(broken)]) == 1
    assert "invalid JSON" in capsys.readouterr().err


def test_cli_entry_point_is_installed(tmp_path):
    """The installed command validates a catalog: the original im2txt entry, which has no weights to find (so
    this test needs no ../shared; models.json with its weights: test_repository_catalog_validates_with_weights)."""
    exe = Path(sys.executable).with_name("runway-models")
    (tmp_path / "models.json").write_text(json.dumps([ORIGINAL]))
    result = subprocess.run([str(exe), "validate", str(tmp_path / "models.json")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_sleep_and_hosted_settings():
    """Scaling to zero is Serve's min_replicas 0 with its own idle delay; the hosted API is private unless an
    entry says public."""
    from serve.app import model_deployment_options

    entry = yolo_entry()
    entry["serving"]["autoscaling"] = {"min_replicas": 0, "max_replicas": 1, "downscale_to_zero_delay_s": 5}
    entry["serving"]["hosted"] = {"public": True}
    parsed = parse_catalog([entry]).entries[0]
    assert parsed.serving.autoscaling.sleeps and parsed.serving.hosted.public
    assert not parsed.serving.hosted.protect_original_routes
    scaling = model_deployment_options(parsed, use_gpu=False)["autoscaling_config"]
    assert (scaling["min_replicas"], scaling["initial_replicas"], scaling["downscale_to_zero_delay_s"]) == (0, 1, 5)
    assert not parse_catalog([yolo_entry()]).entries[0].serving.hosted.public


def test_sleep_delay_without_scaling_to_zero_is_refused():
    entry = yolo_entry()
    entry["serving"]["autoscaling"]["downscale_to_zero_delay_s"] = 5
    assert any("needs min_replicas 0" in p for p in problems_of([entry]))
    entry = yolo_entry()
    entry["serving"]["hosted"] = {"public": "yes please"}
    assert any("serving.hosted.public" in p for p in problems_of([entry]))
