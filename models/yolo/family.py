"""The YOLO family's declaration: its options and weight roles (pydantic only: the catalog validates with it)."""

from __future__ import annotations

from pydantic import Field, PositiveInt

from serve.family import Family, Options, WeightRoles


class YoloOptions(Options):
    input_size: PositiveInt | tuple[PositiveInt, PositiveInt] | None = Field(
        None, description="network input, one side or [w, h] (a multiple of the net's stride, e.g. 32); "
                          "default: the cfg's")
    conf_threshold: float = Field(0.25, ge=0, le=1, description="least objectness x class score kept")
    nms_threshold: float = Field(0.45, ge=0, le=1, description="IoU above which a weaker box of a class is dropped")
    letterbox: bool = Field(True, description="keep the aspect ratio (grey bars), as darknet does")
    max_detections: int = Field(100, ge=1, description="most boxes answered per image")


FAMILY = Family(
    options=YoloOptions,
    weights=WeightRoles.all_of("cfg", "weights", "names"),  # darknet .cfg, .weights, one class name a line
    model="models.yolo.model:YoloModel",
)
