"""YOLO detectors from darknet cfg/weights files (YOLOv2/v3/v3-tiny, YOLO-Fastest), run with torch.

Nothing is imported here: `family.py` (what the catalog validates) must load without torch; the model is
`models.yolo.model.YoloModel`."""
