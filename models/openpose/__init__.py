"""OpenPose family: multi-person pose estimation with part affinity fields."""

from models.openpose.model import OpenPoseModel
from models.openpose.render import draw_poses
from models.openpose.types import Keypoint, Person, Poses

__all__ = ["OpenPoseModel", "Keypoint", "Person", "Poses", "draw_poses"]
