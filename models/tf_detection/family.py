"""The TF Object Detection family's declaration: its options and weight roles (pydantic only: the catalog
validates with it)."""

from __future__ import annotations

from pydantic import Field, PositiveInt

from serve.family import Family, Options, WeightRoles

#: The export formats, one weight role each; a model is given exactly one of them.
FORMATS = ("tflite", "saved_model", "frozen_graph")


class TFDetectionOptions(Options):
    score_threshold: float = Field(0.4, ge=0, le=1, description="least score kept")
    max_detections: int = Field(100, ge=1, description="most boxes answered per image")
    label_offset: int | None = Field(None, description="added to a raw class before the label-map lookup; "
                                     "default 1 for tflite (0-based classes), 0 otherwise")
    label_field: str = Field("display_name", description="the .pbtxt item field used as the label")
    num_threads: int | None = Field(None, ge=1, description="threads per TFLite interpreter; default: "
                                    "serving.threads.intra_op (resolved for the replica's cores)")
    interpreters: int | None = Field(None, ge=1, description="TFLite interpreters per replica, each computing "
                                     "one image at a time; default: serving.threads.batches (resolved)")
    input_mean: float = Field(127.5, description="float TFLite inputs: (pixel - mean) / std")
    input_std: float = Field(127.5, gt=0, description="float TFLite inputs: (pixel - mean) / std")
    input_size: tuple[PositiveInt, PositiveInt] | None = Field(
        None, description="[w, h] every image is resized to before a SavedModel / frozen graph, so a batch is "
                          "one call")
    intra_op_threads: int = Field(2, ge=1, description="frozen graph session: threads within an op")
    inter_op_threads: int = Field(1, ge=1, description="frozen graph session: ops run side by side")
    signature: str = Field("serving_default", description="SavedModel signature to call")


FAMILY = Family(
    options=TFDetectionOptions,
    weights=WeightRoles.one_of(*FORMATS, optional=["labels"]),  # labels: a .pbtxt or .txt label map
    model="models.tf_detection.model:TFDetectionModel",
)
