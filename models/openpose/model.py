"""OpenPose family: multi-person 2D pose from part confidence maps and part affinity fields (Cao et al. 2017).

Weights accepted (`ModelSpec.weights` roles):
- "graph": a frozen TF GraphDef from tf-pose-estimation (e.g. `mobilenet_v2_small/graph_opt.pb`). Input
  `image:0` float BGR 0..255 NHWC, output `Openpose/concat_stage7:0` (options `input_name`, `output_name`).
- "prototxt" + "caffemodel": CMU's COCO Caffe model (`pose_deploy_linevec.prototxt`,
  `pose_iter_440000.caffemodel`), run by OpenCV dnn, input normalised x/256 - 0.5.
- "onnx": an ONNX export of CMU's COCO model (NCHW, same normalisation), run by OpenCV dnn.
All produce 19 heatmaps + 38 PAFs at 1/8 of the input; `paf.py` turns them into people.

Options: models/openpose/family.py (`input_size`, TF and OpenCV threads, `normalisation`, the graph's tensor
names, and the `PafConfig` fields: peak_threshold, paf_threshold, min_parts, min_score, ...).

A batch is one network call (graph.py makes tf-pose's batch norms per-image so that is exact). On 2 CPU cores
it buys nothing: the mobilenet_v2_small graph takes 34-37 ms per image at batch 1 and 37-45 ms at batch 4 or 8
(intra_op_threads 1 or 2 alike), plus ~2-4 ms resize and ~8-15 ms PAF parsing per image.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from models.openpose.backends import NORMALISATIONS, CvDnnRunner, TFGraphRunner, split_maps
from models.openpose.family import FAMILY, OpenPoseOptions
from models.openpose.paf import PARTS, estimate_poses
from models.openpose.render import draw_poses
from models.openpose.types import Person, Poses
from models.outputs import Keypoint
from serve.model import Model


class OpenPoseModel(Model[Poses]):
    family = FAMILY
    output_type = Poses
    options: OpenPoseOptions

    def __init__(self, spec):
        super().__init__(spec)
        self.runner = None
        self.normalise = None

    def load_weights(self) -> None:
        weights, opts = self.spec.weights, self.options
        if "graph" in weights:
            self.runner = TFGraphRunner(weights["graph"], opts.input_name, opts.output_name,
                                        opts.intra_op_threads, opts.inter_op_threads)
            default_norm = "bgr255"
        elif "onnx" in weights:
            self.runner = CvDnnRunner.from_onnx(weights["onnx"], opts.opencv_threads)
            default_norm = "cmu"
        else:  # "prototxt", with or without "caffemodel" (the family's roles allow nothing else)
            # A prototxt alone is enough only for a network without learned weights (used by the tests).
            self.runner = CvDnnRunner.from_caffe(weights["prototxt"], weights.get("caffemodel"), opts.opencv_threads)
            default_norm = "cmu"
        self.normalise = NORMALISATIONS[opts.normalisation or default_norm]

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        # Plain resize (no letterbox) as tf-pose does: results come back normalised, so scaling them by the
        # original size undoes the stretch exactly.
        height, width = image.shape[:2]
        resized = np.asarray(Image.fromarray(image).resize(self.options.input_size, Image.BILINEAR))
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
        for pose in estimate_poses(heatmaps, pafs, self.options):
            keypoints = {
                PARTS[p]: Keypoint(x=x * width, y=y * height, score=score)
                for p, (x, y, score) in pose.keypoints.items()
            }
            limbs = [(PARTS[a], PARTS[b], float(s)) for a, b, s in pose.limbs]
            people.append(Person(keypoints=keypoints, limbs=limbs, score=pose.score, part_count=len(keypoints)))
        return Poses(people=people, width=width, height=height)

