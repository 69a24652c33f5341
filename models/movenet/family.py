"""The MoveNet family's declaration: its options and weight roles (pydantic only: the catalog validates with it)."""

from __future__ import annotations

from pydantic import Field

from serve.family import Family, Options, WeightRoles


class MoveNetOptions(Options):
    num_threads: int | None = Field(None, ge=1, description="threads per TFLite interpreter; default: "
                                    "serving.threads.intra_op (resolved for the replica's cores)")
    interpreters: int | None = Field(None, ge=1, description="TFLite interpreters per replica, each computing "
                                     "one image at a time; default: serving.threads.batches (resolved)")
    min_score: float = Field(0.0, ge=0, le=1, description="keypoints scoring lower are left out; 0 keeps all 17")


FAMILY = Family(
    options=MoveNetOptions,
    weights=WeightRoles.all_of("tflite"),  # e.g. movenet_single_pose_lightning_ptq.tflite
    model="models.movenet.model:MoveNetModel",
)
