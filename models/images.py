"""Image operations shared by the families."""

from __future__ import annotations

import numpy as np


def resize(rgb: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """Bilinear resize to (w, h) without antialiasing, pixel centres aligned: what the Object Detection API
    trained with (tf.image.resize), as cv2.INTER_LINEAR does it. PIL's bilinear filter antialiases when
    shrinking, which changes borderline answers (dog.jpg's dog reads as a cat with it). A plain stretch, no
    letterbox: the detectors (and MoveNet) answer in normalised coordinates, so the stretch cancels out."""
    if size is None or (rgb.shape[1], rgb.shape[0]) == tuple(size):
        return rgb
    import cv2  # imported here: the label-map and SavedModel paths do not need OpenCV

    return cv2.resize(rgb, (int(size[0]), int(size[1])), interpolation=cv2.INTER_LINEAR)
