"""TF Object Detection API family: TFLite, SavedModel and frozen-graph detectors with label maps. The model is
`models.tf_detection.model.TFDetectionModel`; nothing is imported here, so `family.py` (what the catalog
validates) loads alone."""
