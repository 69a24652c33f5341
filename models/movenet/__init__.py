"""MoveNet SinglePose family (TFLite)."""

from models.movenet.model import MoveNetModel, Pose

__all__ = ["MoveNetModel", "Pose"]
