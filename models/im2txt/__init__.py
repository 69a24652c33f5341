"""im2txt (Show and Tell) image captioning from tensorflow/models' TF1 checkpoint, run with torch."""

from models.im2txt.model import Im2txtModel

__all__ = ["Im2txtModel"]
