"""The Ray Serve config: `serve deploy` format, checked with Ray's own ServeDeploySchema."""

from __future__ import annotations

import pytest
import yaml

from deploy.generate import render
from deploy.serve_config import MODEL_DEPLOYMENT, MODEL_IMPORT_PATH, validate_serve_config
from tests.helpers.paths import MODELS_JSON


@pytest.fixture(scope="module")
def config() -> dict:
    return render(MODELS_JSON, "serve-config").files["serve-config.yaml"][0]


def test_passes_ray_serve_deploy_schema(config):
    from ray.serve.schema import ServeDeploySchema

    ServeDeploySchema.model_validate(config)
    assert validate_serve_config(config) == []


def test_one_application_per_built_model_plus_the_catalog(config, raw_catalog):
    apps = {app["name"]: app for app in config["applications"]}
    assert apps["catalog"] == {"name": "catalog", "route_prefix": "/", "import_path": "serve.app:build_catalog_app",
                               "args": {"catalog": "/app/models.json"}}
    import serve.app  # the chart's import paths resolve in the runtime

    assert callable(serve.app.build_catalog_app) and MODEL_IMPORT_PATH == "serve.app:build_model_app"
    built = {"openpose", "yolo", "object-detection", "movenet", "densecap"}  # im2txt: no serving section
    assert set(apps) == built | {"catalog"}
    for name in built:
        assert apps[name]["route_prefix"] == f"/{name}"
        assert apps[name]["import_path"] == MODEL_IMPORT_PATH
        assert apps[name]["args"] == {"catalog": "/app/models.json", "model": name}
        assert [d["name"] for d in apps[name]["deployments"]] == [MODEL_DEPLOYMENT]
    assert config["proxy_location"] == "EveryNode"
    assert config["http_options"] == {"host": "0.0.0.0", "port": 8000}


def test_deployment_options_are_the_runtimes_own(config):
    """One source: the deployed options are what `serve.app.model_deployment_options` gives the runtime."""
    from serve.app import model_deployment_options
    from serve.catalog import load_catalog

    catalog = load_catalog(MODELS_JSON)
    for app in config["applications"][1:]:
        expected = {"name": MODEL_DEPLOYMENT, **model_deployment_options(catalog.get(app["name"]), True)}
        assert app["deployments"] == [expected]
    yolo = next(a for a in config["applications"] if a["name"] == "yolo")["deployments"][0]
    assert yolo["autoscaling_config"]["min_replicas"] == 1 and yolo["autoscaling_config"]["max_replicas"] == 2
    assert yolo["ray_actor_options"] == {"num_cpus": 0.4, "num_gpus": 0.25}
    assert yolo["user_config"]["max_batch_size"] == 4
    detection = next(a for a in config["applications"] if a["name"] == "object-detection")["deployments"][0]
    assert "num_gpus" not in detection["ray_actor_options"]  # specs.gpu is false


def test_catalog_app_sizing_matches_the_runtime():
    from serve.catalog_app import CatalogServer
    from deploy.plan import CATALOG_APP_CPUS

    assert CatalogServer.name == "CatalogServer"
    assert CatalogServer.ray_actor_options["num_cpus"] == CATALOG_APP_CPUS


def test_memory_and_initial_replicas_when_the_catalog_sets_them(write_catalog):
    def edit(entries):
        entries["yolo"]["serving"]["resources"]["memory_mb"] = 1536
        entries["yolo"]["serving"]["autoscaling"]["initial_replicas"] = 2
    config = render(write_catalog(edit), "serve-config").files["serve-config.yaml"][0]
    yolo = next(a for a in config["applications"] if a["name"] == "yolo")["deployments"][0]
    assert yolo["ray_actor_options"]["memory"] == 1536 * 1024 * 1024
    assert yolo["autoscaling_config"]["initial_replicas"] == 2
    assert validate_serve_config(config) == []


def test_num_gpus_only_when_specs_gpu(write_catalog):
    def edit(entries):
        entries["yolo"]["specs"]["gpu"] = False
    config = render(write_catalog(edit), "serve-config").files["serve-config.yaml"][0]
    yolo = next(a for a in config["applications"] if a["name"] == "yolo")["deployments"][0]
    assert yolo["ray_actor_options"] == {"num_cpus": 0.4}


@pytest.mark.parametrize("mutate, expected", [
    (lambda c: c["applications"][1]["deployments"][0].update(max_ongoing_request=3), "did you mean"),
    (lambda c: c["applications"][1]["deployments"][0]["ray_actor_options"].update(num_gpu=1), "num_gpu"),
    (lambda c: c["applications"][2]["deployments"][0]["autoscaling_config"].update(min_replicas=9),
     "min_replicas"),
    (lambda c: c["applications"][2].update(route_prefix="/openpose"), "route_prefix"),
    (lambda c: c.update(proxy_locaton="EveryNode"), "proxy_locaton"),
])
def test_validation_catches_what_ray_would_reject_or_ignore(config, mutate, expected):
    bad = yaml.safe_load(yaml.safe_dump(config))
    mutate(bad)
    problems = validate_serve_config(bad)
    assert problems and any(expected in p for p in problems), problems
