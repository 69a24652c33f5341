"""MoveNet SinglePose Lightning (Coral's int8 PTQ TFLite) against Coral's reference keypoints for squat.bmp."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from models.movenet.model import KEYPOINTS, MoveNetModel
from serve.model import ModelSpec


@pytest.fixture(scope="module")
def movenet(shared):
    weights = {"tflite": shared / "weights/pose/movenet_single_pose_lightning_ptq.tflite"}
    model = MoveNetModel(ModelSpec("movenet", weights))
    model.load()
    return model


@pytest.mark.slow
def test_squat_matches_coral_reference(movenet, shared, photo):
    image = photo("squat.bmp")
    (pose,) = movenet.infer([image])
    h, w = image.shape[:2]
    with open(shared / "weights/pose/movenet_single_pose_lightning_ptq_reference.csv") as f:
        reference = {int(row["keypoint_id"]): row for row in csv.DictReader(f)}
    deltas = []
    for i, name in enumerate(KEYPOINTS):
        kp = pose.keypoints[name]
        deltas += [abs(kp.x / w - float(reference[i]["keypoint_x"])), abs(kp.y / h - float(reference[i]["keypoint_y"]))]
    assert max(deltas) <= 0.05, max(deltas)
    # 14 of 17 above 0.3 here (Coral reports 16: its resize differs; the positions agree to 0.023).
    assert sum(kp.score > 0.3 for kp in pose.keypoints.values()) >= 12


@pytest.mark.slow
def test_cat_scores_low_and_batch_equals_single(movenet, photo):
    images = [photo("chelsea"), photo("squat.bmp")]
    cat, squat = movenet.infer(images)
    assert np.mean([kp.score for kp in cat.keypoints.values()]) < 0.2
    alone = movenet.infer([images[1]])[0]
    assert alone.model_dump() == squat.model_dump()


def test_needs_tflite_weights():
    with pytest.raises(ValueError, match="tflite"):
        MoveNetModel(ModelSpec("m", {})).load()
