"""The OpenPose family's declaration: its options and weight roles (the catalog validates with it; no TensorFlow).

Weight roles, one format each: "graph" (a frozen TF GraphDef from tf-pose-estimation), "onnx" (an ONNX export of
CMU's COCO model), or "prototxt" + "caffemodel" (CMU's Caffe model; a prototxt alone only builds a network
without learned weights, which the tests use).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt, field_validator

from models.openpose.backends import NORMALISATIONS
from models.openpose.paf import PafConfig
from serve.family import Family, Roles, WeightRoles

STRIDE = 8  # the network's maps are 1/8 of its input


class OpenPoseOptions(PafConfig):
    """The PAF parsing knobs (`PafConfig`) plus the network's input and runtime settings."""

    input_size: tuple[PositiveInt, PositiveInt] = Field(
        (432, 368), description="[w, h] the image is resized to (tf-pose's training size; any multiple of 8)")
    intra_op_threads: int = Field(2, ge=1, description="TF session: threads within an op")
    inter_op_threads: int = Field(1, ge=1, description="TF session: ops run side by side")
    opencv_threads: int | None = Field(None, ge=1, description="OpenCV dnn threads; process-wide in OpenCV, so "
                                       "left alone unless given")
    normalisation: Literal[tuple(NORMALISATIONS)] | None = Field(  # type: ignore[valid-type]
        None, description="how pixels are scaled for the network; default: bgr255 for a graph, cmu otherwise")
    input_name: str = Field("image:0", description="input tensor of the graph (tf-pose's)")
    output_name: str = Field("Openpose/concat_stage7:0", description="output tensor of the graph (tf-pose's)")

    @field_validator("input_size")
    @classmethod
    def _stride(cls, size: tuple[int, int]) -> tuple[int, int]:
        if size[0] % STRIDE or size[1] % STRIDE:
            raise ValueError(f"input_size must be multiples of {STRIDE} (the network stride), got {list(size)}")
        return size


FAMILY = Family(
    options=OpenPoseOptions,
    weights=WeightRoles((Roles(frozenset({"graph"})), Roles(frozenset({"onnx"})),
                         Roles(frozenset({"prototxt"}), frozenset({"caffemodel"})))),
    model="models.openpose.model:OpenPoseModel",
)
