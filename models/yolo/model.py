"""YOLO detector family: darknet cfg + weights + class names, run with torch on CPU or CUDA."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from models.outputs import Box, Detection, Detections
from models.torch_device import torch_device
from models.yolo.darknet import load_darknet
from models.yolo.family import FAMILY, YoloOptions
from serve.model import Model, ModelSpec


@dataclass(frozen=True)
class Transform:
    """Maps network-input pixels back to the image: x_image = (x_net - pad_x) / scale_x."""

    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float
    width: int
    height: int


def nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy class-aware NMS on (x1, y1, x2, y2) boxes; returns kept indices, best score first.
    Boxes of different classes never suppress each other: each class is shifted to its own region."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    shift = (boxes.max() - boxes.min() + 1) * classes.astype(boxes.dtype)
    b = boxes + shift[:, None]
    areas = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.clip(np.minimum(b[i, 2], b[rest, 2]) - np.maximum(b[i, 0], b[rest, 0]), 0, None)
        h = np.clip(np.minimum(b[i, 3], b[rest, 3]) - np.maximum(b[i, 1], b[rest, 1]), 0, None)
        inter = w * h
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-12)
        order = rest[iou <= threshold]
    return np.asarray(keep, dtype=np.int64)


def select(rows: np.ndarray, conf: float, iou: float, max_det: int):
    """Head rows (cx, cy, w, h, obj, class probs) -> (xyxy boxes, scores, class ids), best first.
    Scores are obj * class prob, as darknet (and OpenCV's darknet importer) score them."""
    return select_scored(rows[:, :4], rows[:, 4:5] * rows[:, 5:], conf, iou, max_det)


def select_scored(cxcywh: np.ndarray, class_scores: np.ndarray, conf: float, iou: float, max_det: int):
    """Every (box, class) scoring over `conf` is a candidate, as in darknet, so a box torn between two
    classes (cup 0.69 / table 0.68) keeps both instead of flipping on tiny input changes; then
    class-aware NMS and the best `max_det`."""
    rows, cls = np.nonzero(class_scores > conf)
    score = class_scores[rows, cls]
    half = cxcywh[rows, 2:4] / 2
    boxes = np.concatenate([cxcywh[rows, :2] - half, cxcywh[rows, :2] + half], 1)
    keep = nms(boxes, score, cls, iou)[:max_det]
    return boxes[keep], score[keep], cls[keep]


class YoloModel(Model[Detections]):
    """Weights and options: models/yolo/family.py."""

    family = FAMILY
    output_type = Detections
    options: YoloOptions

    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        self.net = None
        self.names: list[str] = []

    def load_weights(self) -> None:
        self.device = torch_device(self.spec.name, self.spec.device)
        net = load_darknet(self.spec.weights["cfg"], self.spec.weights["weights"])
        self.net = net.fuse().eval().to(self.device)
        self.names = [n.strip() for n in Path(self.spec.weights["names"]).read_text().splitlines() if n.strip()]
        if len(self.names) != net.classes:
            raise ValueError(f"{self.spec.name}: names file has {len(self.names)} classes, cfg has {net.classes}")
        size = self.options.input_size or (net.width, net.height)
        self.input_w, self.input_h = (size, size) if isinstance(size, int) else size
        try:  # warm-up: first call allocates and picks kernels; also proves the input size fits the net
            self.predict([torch.full((net.channels, self.input_h, self.input_w), 0.5)])
        except RuntimeError as e:
            raise ValueError(f"{self.spec.name}: input size {self.input_w}x{self.input_h} does not fit "
                             f"the network (use a multiple of its stride, e.g. 32): {e}") from e

    def preprocess(self, image: np.ndarray) -> tuple[torch.Tensor, Transform]:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}")
        h, w = image.shape[:2]
        x = torch.tensor(image).permute(2, 0, 1)[None].float().div_(255)
        if self.options.letterbox:  # darknet's letterbox: fit inside, keep aspect, centre on grey 0.5
            if self.input_w / w < self.input_h / h:
                nw, nh = self.input_w, h * self.input_w // w
            else:
                nw, nh = w * self.input_h // h, self.input_h
            nw, nh = max(nw, 1), max(nh, 1)
            px, py = (self.input_w - nw) // 2, (self.input_h - nh) // 2
        else:
            nw, nh, px, py = self.input_w, self.input_h, 0, 0
        # plain bilinear without antialiasing, as darknet and OpenCV's blobFromImage resize
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=False)[0]
        if (nw, nh) != (self.input_w, self.input_h):
            canvas = torch.full((3, self.input_h, self.input_w), 0.5)
            canvas[:, py : py + nh, px : px + nw] = x
            x = canvas
        return x, Transform(nw / w, nh / h, px, py, w, h)

    def predict(self, inputs: list[torch.Tensor]) -> list[np.ndarray]:
        batch = torch.stack(inputs).to(self.device)
        with torch.inference_mode():
            rows = torch.cat(self.net(batch), 1).float().cpu().numpy()
        return list(rows)

    def postprocess(self, raw: np.ndarray, meta: Transform) -> Detections:
        opts = self.options
        boxes, scores, classes = select(raw, opts.conf_threshold, opts.nms_threshold, opts.max_detections)
        boxes = (boxes - [meta.pad_x, meta.pad_y, meta.pad_x, meta.pad_y]) / [
            meta.scale_x, meta.scale_y, meta.scale_x, meta.scale_y]
        boxes = np.clip(boxes, 0, [meta.width, meta.height, meta.width, meta.height])
        detections = [
            Detection(label=self.names[c], class_id=int(c), score=float(min(max(s, 0.0), 1.0)),
                      box=Box(x1=float(b[0]), y1=float(b[1]), x2=float(b[2]), y2=float(b[3])))
            for b, s, c in zip(boxes, scores, classes)
            if b[2] > b[0] and b[3] > b[1]  # a box wholly outside the image clips to nothing
        ]
        return Detections(detections=detections, width=meta.width, height=meta.height)
