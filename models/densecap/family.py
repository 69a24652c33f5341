"""The DenseCap family's declaration: its options and weight roles (pydantic only: the catalog validates with it)."""

from __future__ import annotations

from pydantic import Field

from serve.family import Family, Options, WeightRoles


class DenseCapOptions(Options):
    """Defaults are run_model.lua's."""

    image_size: int = Field(720, ge=32, le=4096, description="the image is scaled so its longer side is this")
    rpn_nms_thresh: float = Field(0.7, gt=0, le=1, description="NMS IoU among the RPN's proposals")
    num_proposals: int = Field(1000, ge=1, le=20000, description="proposals kept after the RPN's NMS")
    final_nms_thresh: float = Field(0.3, ge=0, le=1, description="NMS IoU among final regions (0: none)")
    max_regions: int | None = Field(10, ge=1, description="best regions answered (run_model draws 10); "
                                    "null: every region left after the final NMS")


FAMILY = Family(
    options=DenseCapOptions,
    # densecap-pretrained-vgg16.t7 (torch.save of the DenseCapModel), or the release's zip of it
    weights=WeightRoles.all_of("checkpoint"),
    model="models.densecap.model:DenseCapModel",
)
