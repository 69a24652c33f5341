"""TF Object Detection API family: TFLite, SavedModel and frozen-graph detectors with label maps."""

from models.tf_detection.labels import LabelMap, parse_pbtxt, parse_txt
from models.tf_detection.model import TFDetectionModel

__all__ = ["TFDetectionModel", "LabelMap", "parse_pbtxt", "parse_txt"]
