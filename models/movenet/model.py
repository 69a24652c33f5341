"""MoveNet SinglePose (Lightning / Thunder) TFLite: one person's 17 COCO keypoints per image.

Weights: role "tflite" (e.g. Coral's `movenet_single_pose_lightning_ptq.tflite`: uint8 [1, 192, 192, 3] RGB in,
float [1, 1, 17, 3] = (y, x, score) normalised out).
Options: models/movenet/family.py (threads, interpreters: see models/tflite.InterpreterPool, min_score).
Measured on 2 cores (ms per image, batch 1 / 8): 1 interpreter x 1 thread 4.7 / 4.7; 1 x 2 threads
6.1 / 6.1-8.8; 2 x 1 thread 4.7-5.2 / 4.7-5.2: the model is too small for threads or a pool to pay off here.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import BaseModel, Field

from models.images import resize
from models.movenet.family import FAMILY, MoveNetOptions
from models.outputs import Keypoint
from models.tflite import InterpreterPool
from serve.model import Model

KEYPOINTS = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle",
)  # fmt: skip


class Pose(BaseModel):
    """The single most prominent person (MoveNet SinglePose always answers 17 points; read the scores)."""

    #: The keypoint names in a fixed order, for answers laid out as arrays (e.g. keypoint tensors).
    keypoint_names: ClassVar[tuple[str, ...]] = KEYPOINTS

    keypoints: dict[str, Keypoint] = Field(description="COCO keypoint name -> position")
    width: int = Field(description="input image width, pixels")
    height: int = Field(description="input image height, pixels")


class MoveNetModel(Model[Pose]):
    family = FAMILY
    output_type = Pose
    options: MoveNetOptions

    @property
    def concurrent_batches(self) -> int:
        return self.pool.size

    def load_weights(self) -> None:
        self.pool = InterpreterPool.for_spec(self.spec.weights["tflite"], self.spec, self.options)
        detail = self.pool.probe.get_input_details()[0]
        self.input_index, self.dtype = detail["index"], np.dtype(detail["dtype"])
        self.size = (int(detail["shape"][2]), int(detail["shape"][1]))
        self.output_index = self.pool.probe.get_output_details()[0]["index"]

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        # Plain stretch to the square input, as Coral's reference run did: normalised outputs map straight back.
        return resize(image, self.size).astype(self.dtype), (image.shape[1], image.shape[0])

    def _invoke(self, interpreter, x: np.ndarray) -> np.ndarray:
        interpreter.set_tensor(self.input_index, x[None])
        interpreter.invoke()
        return interpreter.get_tensor(self.output_index).reshape(-1, 3)[: len(KEYPOINTS)]

    def predict(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return self.pool.map(self._invoke, inputs)

    def postprocess(self, raw: np.ndarray, meta: tuple[int, int]) -> Pose:
        width, height = meta
        keypoints = {
            name: Keypoint(x=float(x) * width, y=float(y) * height, score=float(np.clip(score, 0, 1)))
            for name, (y, x, score) in zip(KEYPOINTS, raw)
            if score >= self.options.min_score
        }
        return Pose(keypoints=keypoints, width=width, height=height)
