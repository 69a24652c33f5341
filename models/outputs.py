"""Answer types shared by several model families (pydantic, so they document themselves in OpenAPI)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Box(BaseModel):
    """An axis-aligned box in the input image's pixel coordinates."""

    x1: float = Field(description="left edge, pixels")
    y1: float = Field(description="top edge, pixels")
    x2: float = Field(description="right edge, pixels")
    y2: float = Field(description="bottom edge, pixels")


class Detection(BaseModel):
    """One detected object."""

    label: str = Field(description="class name")
    class_id: int = Field(description="index of the class in the model's label list")
    score: float = Field(ge=0.0, le=1.0, description="confidence")
    box: Box


class Detections(BaseModel):
    """All objects found in one image, best first."""

    detections: list[Detection]
    width: int = Field(description="input image width, pixels")
    height: int = Field(description="input image height, pixels")


class Keypoint(BaseModel):
    """One body part of one person (OpenPose, MoveNet)."""

    x: float = Field(description="horizontal position, input image pixels")
    y: float = Field(description="vertical position, input image pixels")
    score: float = Field(ge=0.0, le=1.0, description="confidence of the part (OpenPose: the peak of its heatmap)")
