"""Answer types of the OpenPose family (pydantic, so they document themselves in OpenAPI)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from models.outputs import Keypoint


class Person(BaseModel):
    """One person assembled from parts and limbs; parts that were not found are absent."""

    keypoints: dict[str, Keypoint] = Field(
        description="part name (Nose, Neck, RShoulder, ... LEar: the 18 COCO parts of OpenPose) -> position"
    )
    limbs: list[tuple[str, str, float]] = Field(
        description="connected limbs as (from part, to part, PAF line-integral score)"
    )
    score: float = Field(ge=0.0, le=1.0, description="mean of the person's part confidences and limb scores")
    part_count: int = Field(ge=0, le=18, description="number of parts found")


class Poses(BaseModel):
    """All people found in one image, the most complete first."""

    people: list[Person]
    width: int = Field(description="input image width, pixels")
    height: int = Field(description="input image height, pixels")
