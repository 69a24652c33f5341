"""Which device a replica runs its model on (serve.app.choose_device), with this machine's real torch (the CPU
build, as in the CPU image): a GPU handed to a replica whose torch has no CUDA falls back to CPU and says which
image to run, instead of failing to load."""

from __future__ import annotations

import logging

import pytest
import torch

from serve.app import choose_device
from serve.catalog import load_catalog
from serve.registry import GPU_FAMILIES, GPU_IMAGE_SUFFIX
from tests.deploy.conftest import MODELS_JSON


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(MODELS_JSON)


def test_this_torch_is_the_cpu_build():
    assert not torch.cuda.is_available()  # what the CPU image runs on a GPU node


def test_a_gpu_without_cuda_falls_back_to_cpu_naming_the_gpu_image(catalog, caplog):
    yolo = catalog.get("yolo")
    assert yolo.serving.implementation in GPU_FAMILIES
    with caplog.at_level(logging.WARNING, logger="ray.serve"):
        assert choose_device(yolo, [0]) == "cpu"
    message = caplog.text
    assert "yolo" in message and repr(GPU_IMAGE_SUFFIX) in message and "image.gpuTag" in message


@pytest.mark.parametrize("name", ["openpose", "object-detection", "movenet"])
def test_cpu_families_run_on_cpu_whatever_they_are_given(catalog, caplog, name):
    entry = catalog.get(name)
    assert entry.serving.implementation not in GPU_FAMILIES
    with caplog.at_level(logging.WARNING, logger="ray.serve"):
        assert choose_device(entry, [0]) == "cpu"
    assert caplog.text == ""  # nothing to warn about: the family never uses a GPU


def test_no_gpu_given_means_cpu(catalog):
    assert choose_device(catalog.get("yolo"), []) == "cpu"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device and CUDA torch")
def test_a_gpu_family_given_a_gpu_runs_on_cuda(catalog):
    assert choose_device(catalog.get("yolo"), [0]) == "cuda"
