"""YOLO detectors from darknet cfg/weights files (YOLOv2/v3/v3-tiny, YOLO-Fastest), run with torch."""

from models.yolo.model import YoloModel

__all__ = ["YoloModel"]
