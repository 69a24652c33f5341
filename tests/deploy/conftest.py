"""Fixtures for the deployment tests: the KubeRay CRDs from the shared folder (missing: the tests that validate
KubeRay objects fail, not skip), and bad catalogs. Shared values and chart rendering: tests/helpers/deploy.py."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.helpers.deploy import with_busy_cpu_pool, with_docker_gpu
from tests.helpers.paths import MODELS_JSON


@pytest.fixture(scope="session")
def kuberay_dir(shared: Path) -> Path:
    """For tests that validate KubeRay objects themselves. The generator finds the same folder on its own
    ($RUNWAY_SHARED/schemas, set by tests/conftest.py) and says "CRDs not found" when it is missing; tests that
    need nothing from the shared folder do not ask for it."""
    folder = shared / "schemas" / "kuberay-v1.7.0"
    if not (folder / "ray.io_rayservices.yaml").is_file():
        pytest.fail(f"KubeRay 1.7.0 CRDs not found in {folder}", pytrace=False)
    return folder


@pytest.fixture(scope="session")
def busy_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """models.json edited by `with_busy_cpu_pool`, with the GPU Docker-only fixture entry (`with_docker_gpu`):
    every kind of object the generator writes."""
    data = with_docker_gpu(json.loads(MODELS_JSON.read_text()))
    with_busy_cpu_pool({e["name"]: e for e in data})
    path = tmp_path_factory.mktemp("busy") / "models.json"
    path.write_text(json.dumps(data, indent=2))
    return path


@pytest.fixture(scope="session")
def docker_gpu_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """models.json plus the GPU Docker-only fixture entry (`with_docker_gpu`)."""
    path = tmp_path_factory.mktemp("docker-gpu") / "models.json"
    path.write_text(json.dumps(with_docker_gpu(json.loads(MODELS_JSON.read_text())), indent=2))
    return path


@pytest.fixture(scope="session")
def raw_catalog() -> list[dict[str, Any]]:
    return json.loads(MODELS_JSON.read_text())


@pytest.fixture
def write_catalog(tmp_path: Path, raw_catalog: list[dict[str, Any]]) -> Callable[..., Path]:
    """A copy of models.json changed by `edit(entries_by_name)`, written to tmp_path."""

    def make(edit: Callable[[dict[str, dict[str, Any]]], None] | None = None,
             entries: list[dict[str, Any]] | None = None) -> Path:
        data = copy.deepcopy(entries if entries is not None else raw_catalog)
        if edit:
            edit({e["name"]: e for e in data})
        path = tmp_path / "catalog" / "models.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(data, indent=2))
        return path

    return make


