"""Draw people onto an image (for demos and debugging; no HTTP here: callers encode the array themselves)."""

from __future__ import annotations

import colorsys

import numpy as np
from PIL import Image, ImageDraw

from models.openpose.paf import LIMBS, PARTS
from models.openpose.types import Poses

# One hue per limb type, so left/right and the same limb across people read alike.
_COLOURS = [tuple(int(255 * c) for c in colorsys.hsv_to_rgb(i / len(LIMBS), 1.0, 1.0)) for i in range(len(LIMBS))]
_LIMB_INDEX = {(PARTS[a], PARTS[b]): i for i, (a, b) in enumerate(LIMBS)}


def draw_poses(image: np.ndarray, poses: Poses, thickness: int = 3) -> np.ndarray:
    """RGB uint8 (H, W, 3) in, a copy with each person's limbs and parts drawn, out."""
    canvas = Image.fromarray(np.ascontiguousarray(image[..., :3], dtype=np.uint8))
    draw = ImageDraw.Draw(canvas)
    radius = thickness + 1
    for person in poses.people:
        for start, end, _ in person.limbs:
            a, b = person.keypoints.get(start), person.keypoints.get(end)
            if a and b:
                draw.line([(a.x, a.y), (b.x, b.y)], fill=_COLOURS[_LIMB_INDEX.get((start, end), 0)], width=thickness)
        for point in person.keypoints.values():
            draw.ellipse([point.x - radius, point.y - radius, point.x + radius, point.y + radius], fill=(255, 255, 255))
    return np.asarray(canvas)
