"""Implementation names the catalog may use, and where each family's declaration lives.

Paths are strings, imported on first use: a family's declaration (`models/<family>/family.py`) needs only
pydantic, so validating a catalog imports neither torch nor TensorFlow. A `None` entry is a family of the
original repository whose code is not built yet: the catalog accepts it and the runtime reports the model as
not available.
"""

from __future__ import annotations

import importlib

from serve.family import Family

IMPLEMENTATIONS: dict[str, str | None] = {
    "yolo-darknet": "models.yolo.family:FAMILY",
    "openpose-tf": "models.openpose.family:FAMILY",
    "tf-object-detection": "models.tf_detection.family:FAMILY",
    "movenet-tflite": "models.movenet.family:FAMILY",
    "im2txt": "models.im2txt.family:FAMILY",
    "densecap": "models.densecap.family:FAMILY",
}

#: Families whose model runs on the device the runtime hands it (torch, CUDA in the `-gpu` image). The others run
#: on CPU whatever they are given (the image ships tensorflow-cpu), so the catalog may not ask a GPU for them.
GPU_FAMILIES = frozenset({"yolo-darknet", "im2txt", "densecap"})
#: The tag suffix of the CUDA build of the image (deploy/Dockerfile); GPU pods run `<tag>-gpu` by default.
GPU_IMAGE_SUFFIX = "-gpu"


class NotBuilt(Exception):
    """The catalog names a family this stack does not implement yet."""


def is_built(implementation: str) -> bool:
    return IMPLEMENTATIONS.get(implementation) is not None


def family_of(implementation: str) -> Family:
    """The declaration of a known implementation; NotBuilt when its code does not exist yet."""
    target = IMPLEMENTATIONS[implementation]
    if target is None:
        raise NotBuilt(f"implementation {implementation!r} is not built yet")
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
