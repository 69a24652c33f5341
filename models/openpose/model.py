"""OpenPose family: multi-person 2D pose from part confidence maps and part affinity fields (Cao et al. 2017).

Weights accepted (`ModelSpec.weights` roles):
- "graph": a frozen TF GraphDef from tf-pose-estimation (e.g. `mobilenet_v2_small/graph_opt.pb`). Input
  `image:0` float BGR 0..255 NHWC, output `Openpose/concat_stage7:0` (options `input_name`, `output_name`).
- "prototxt" + "caffemodel": CMU's COCO Caffe model (`pose_deploy_linevec.prototxt`,
  `pose_iter_440000.caffemodel`), run by OpenCV dnn, input normalised x/256 - 0.5.
- "onnx": an ONNX export of CMU's COCO model (NCHW, same normalisation), run by OpenCV dnn.
All produce 19 heatmaps + 38 PAFs at 1/8 of the input; `paf.py` turns them into people.

Options: `input_size` [w, h] the image is resized to (default [432, 368], tf-pose's training size; any multiple
of 8 works), `intra_op_threads` / `inter_op_threads` (TF, default 2 / 1), `opencv_threads` (OpenCV dnn; it is
process-wide, so left alone unless given), `normalisation` ("bgr255" or "cmu",
default by format), and the `PafConfig` fields (peak_threshold, paf_threshold, min_parts, min_score, ...).

A batch is one network call (graph.py makes tf-pose's batch norms per-image so that is exact). On 2 CPU cores
it buys nothing: the mobilenet_v2_small graph takes 34-37 ms per image at batch 1 and 37-45 ms at batch 4 or 8
(intra_op_threads 1 or 2 alike), plus ~2-4 ms resize and ~8-15 ms PAF parsing per image.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image

from models.openpose.backends import NORMALISATIONS, CvDnnRunner, TFGraphRunner, split_maps
from models.openpose.paf import PARTS, PafConfig, estimate_poses
from models.openpose.render import draw_poses
from models.openpose.types import Keypoint, Person, Poses
from serve.model import Model

TFPOSE_INPUT = "image:0"
TFPOSE_OUTPUT = "Openpose/concat_stage7:0"


class OpenPoseModel(Model[Poses]):
    output_type = Poses

    def __init__(self, spec):
        super().__init__(spec)
        opts = spec.options
        width, height = opts.get("input_size", [432, 368])
        if width % 8 or height % 8:
            raise ValueError(f"input_size must be multiples of 8 (the network stride), got {[width, height]}")
        self.input_size = (int(width), int(height))
        known = {f.name for f in dataclasses.fields(PafConfig)}
        self.paf_config = PafConfig(**{k: v for k, v in opts.items() if k in known})
        self.runner = None
        self.normalise = None

    def load(self) -> None:
        weights, opts = self.spec.weights, self.spec.options
        intra, inter = int(opts.get("intra_op_threads", 2)), int(opts.get("inter_op_threads", 1))
        cv_threads = int(opts["opencv_threads"]) if "opencv_threads" in opts else None
        if "graph" in weights:
            self.runner = TFGraphRunner(
                weights["graph"], opts.get("input_name", TFPOSE_INPUT), opts.get("output_name", TFPOSE_OUTPUT),
                intra, inter,
            )  # fmt: skip
            default_norm = "bgr255"
        elif "onnx" in weights:
            self.runner = CvDnnRunner.from_onnx(weights["onnx"], cv_threads)
            default_norm = "cmu"
        elif "prototxt" in weights:
            # A prototxt alone is enough only for a network without learned weights (used by the tests).
            self.runner = CvDnnRunner.from_caffe(weights["prototxt"], weights.get("caffemodel"), cv_threads)
            default_norm = "cmu"
        else:
            raise ValueError(
                f"OpenPose needs weights 'graph', 'onnx' or 'prototxt'+'caffemodel'; got {sorted(weights)}"
            )
        norm = opts.get("normalisation", default_norm)
        if norm not in NORMALISATIONS:
            raise ValueError(f"normalisation must be one of {sorted(NORMALISATIONS)}, got {norm!r}")
        self.normalise = NORMALISATIONS[norm]

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        # Plain resize (no letterbox) as tf-pose does: results come back normalised, so scaling them by the
        # original size undoes the stretch exactly.
        height, width = image.shape[:2]
        resized = np.asarray(Image.fromarray(image).resize(self.input_size, Image.BILINEAR))
        return self.normalise(resized), (width, height)

    def predict(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        # Every input has the same size after preprocess, so the whole batch is one network call.
        return list(self.runner(np.stack(inputs)))

    def render(self, image: np.ndarray, output: Poses) -> np.ndarray:
        return draw_poses(image, output)

    def postprocess(self, raw: np.ndarray, meta: tuple[int, int]) -> Poses:
        width, height = meta
        heatmaps, pafs = split_maps(raw)
        people = []
        for pose in estimate_poses(heatmaps, pafs, self.paf_config):
            keypoints = {
                PARTS[p]: Keypoint(x=x * width, y=y * height, score=score)
                for p, (x, y, score) in pose.keypoints.items()
            }
            limbs = [(PARTS[a], PARTS[b], float(s)) for a, b, s in pose.limbs]
            people.append(Person(keypoints=keypoints, limbs=limbs, score=pose.score, part_count=len(keypoints)))
        return Poses(people=people, width=width, height=height)

