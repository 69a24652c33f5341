"""Fixtures for the deployment tests: the KubeRay CRD the generator ships, and bad catalogs. None needs the shared
folder. Shared values and chart rendering: tests/helpers/deploy.py."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable

import pytest

from deploy.validate import PACKAGED_SCHEMAS, find_kuberay_schemas
from tests.helpers.deploy import with_busy_cpu_pool, with_docker_gpu
from tests.helpers.paths import MODELS_JSON


@pytest.fixture(scope="session")
def kuberay_dir() -> Path:
    """For tests that validate KubeRay objects themselves: the CRD copy shipped in the deploy package, the one the
    generator finds on its own (deploy/schemas/, see its SOURCE.md)."""
    if find_kuberay_schemas(PACKAGED_SCHEMAS) != PACKAGED_SCHEMAS:
        pytest.fail(f"the packaged KubeRay CRD is missing from {PACKAGED_SCHEMAS}", pytrace=False)
    return PACKAGED_SCHEMAS


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


