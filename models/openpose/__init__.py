"""OpenPose family: multi-person pose estimation with part affinity fields. The model is
`models.openpose.model.OpenPoseModel`; nothing is imported here, so `family.py` (what the catalog validates) loads
alone."""
