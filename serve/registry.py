"""Implementation names the catalog may use, and where each family's class lives.

Import paths are strings so that validating a catalog imports neither torch nor TensorFlow. A `None` entry is a
family of the original repository whose code is not built yet: the catalog accepts it and the runtime reports the
model as not available.
"""

from __future__ import annotations

import importlib

IMPLEMENTATIONS: dict[str, str | None] = {
    "yolo-darknet": "models.yolo:YoloModel",
    "openpose-tf": "models.openpose:OpenPoseModel",
    "tf-object-detection": "models.tf_detection:TFDetectionModel",
    "movenet-tflite": "models.movenet:MoveNetModel",
    "im2txt": "models.im2txt:Im2txtModel",
    "densecap": "models.densecap:DenseCapModel",
}


class NotBuilt(Exception):
    """The catalog names a family this stack does not implement yet."""


def model_class(implementation: str) -> type:
    target = IMPLEMENTATIONS[implementation]
    if target is None:
        raise NotBuilt(f"implementation {implementation!r} is not built yet")
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
