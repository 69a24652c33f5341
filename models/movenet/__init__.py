"""MoveNet SinglePose family (TFLite). The model is `models.movenet.model.MoveNetModel`; nothing is imported
here, so `family.py` (what the catalog validates) loads alone."""
