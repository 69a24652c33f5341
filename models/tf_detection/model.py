"""TF Object Detection API family: SSD / Faster R-CNN / EfficientDet exports, whatever the format.

Weights (`ModelSpec.weights` roles; exactly one model role):
- "tflite": a `detect.tflite` ending in TFLite_Detection_PostProcess (uint8, int8 or float input).
- "saved_model": an exported SavedModel directory (`serving_default`: uint8 images in; detection_boxes,
  detection_scores, detection_classes, num_detections out).
- "frozen_graph": a TF1 `frozen_inference_graph.pb` (`image_tensor:0` -> `detection_*:0`).
- "labels" (optional): a `.pbtxt` or `.txt` label map (see labels.py).

Options: score_threshold (0.4), max_detections (100), label_offset (default 1 for tflite, whose classes are
0-based, 0 otherwise), label_field ("display_name"), num_threads (threads per TFLite interpreter, 2),
interpreters (TFLite interpreters per replica run side by side on a batch, 1), input_mean / input_std (float
TFLite inputs, 127.5), input_size [w, h] (resize before SavedModel / frozen graph, so a batch is one call),
intra_op_threads / inter_op_threads (frozen graph session, 2 / 1).

Threads vs interpreters, measured for the quantized SSD MobileNet v1 on 2 cores (predict only, ms per image,
batch 1 / batch 8, two runs): 1 interpreter x 1 thread 14 / 14; 1 x 2 threads 7.4-8.2 / 7.5-7.9;
2 interpreters x 1 thread 14 / 7.2-7.6; 2 x 2 threads 8-15 / 7.6-14 (oversubscribed, unstable). The pool
doubles batch throughput over serial single-threaded interpreters but only matches one interpreter using both
cores, and does nothing for batch 1: keep 1 x 2 here; use interpreters=N with num_threads=1 where cores
outnumber what one interpreter can use, or where each model must stay on one thread.
"""

from __future__ import annotations

import numpy as np

from models.outputs import Box, Detection, Detections
from models.tf_detection.backends import FrozenGraphBackend, RawDetections, SavedModelBackend, TFLiteBackend
from models.tf_detection.labels import LabelMap
from serve.model import Model

FORMATS = ("tflite", "saved_model", "frozen_graph")


class TFDetectionModel(Model[Detections]):
    output_type = Detections

    def __init__(self, spec):
        super().__init__(spec)
        formats = [role for role in FORMATS if role in spec.weights]
        if len(formats) != 1:
            raise ValueError(f"TF detection needs exactly one of the weights {FORMATS}, got {sorted(spec.weights)}")
        self.format = formats[0]
        opts = spec.options
        self.score_threshold = float(opts.get("score_threshold", 0.4))
        self.max_detections = int(opts.get("max_detections", 100))
        self.backend = None
        self.labels = LabelMap({}, 0)

    def load(self) -> None:
        weights, opts = self.spec.weights, self.spec.options
        path = weights[self.format]
        size = tuple(opts["input_size"]) if "input_size" in opts else None
        if self.format == "tflite":
            self.backend = TFLiteBackend(
                path,
                num_threads=int(opts.get("num_threads", 2)),
                interpreters=int(opts.get("interpreters", 1)),
                mean=float(opts.get("input_mean", 127.5)),
                std=float(opts.get("input_std", 127.5)),
            )
        elif self.format == "saved_model":
            self.backend = SavedModelBackend(path, size, opts.get("signature", "serving_default"))
        else:
            self.backend = FrozenGraphBackend(
                path, size, int(opts.get("intra_op_threads", 2)), int(opts.get("inter_op_threads", 1))
            )
        offset = int(opts.get("label_offset", 1 if self.format == "tflite" else 0))
        if "labels" in weights:
            self.labels = LabelMap.read(weights["labels"], offset, opts.get("label_field", "display_name"))
        else:
            self.labels = LabelMap({}, offset)

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        return self.backend.prepare(image), (image.shape[1], image.shape[0])

    def predict(self, inputs: list[np.ndarray]) -> list[RawDetections]:
        return self.backend.run(inputs)

    def postprocess(self, raw: RawDetections, meta: tuple[int, int]) -> Detections:
        width, height = meta
        keep = np.flatnonzero(raw.scores >= self.score_threshold)
        keep = keep[np.argsort(-raw.scores[keep], kind="stable")][: self.max_detections]
        detections = []
        for i in keep:
            # Normalised (ymin, xmin, ymax, xmax) of the (possibly stretched) network input == of the original.
            y1, x1, y2, x2 = np.clip(raw.boxes[i], 0.0, 1.0) * [height, width, height, width]
            box = Box(x1=float(x1), y1=float(y1), x2=float(x2), y2=float(y2))
            score = float(np.clip(raw.scores[i], 0.0, 1.0))
            label, key = self.labels.name(raw.classes[i]), self.labels.key(raw.classes[i])
            detections.append(Detection(label=label, class_id=key, score=score, box=box))
        return Detections(detections=detections, width=width, height=height)
