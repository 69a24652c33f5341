"""TF Object Detection API family: SSD / Faster R-CNN / EfficientDet exports, whatever the format.

Weights (`ModelSpec.weights` roles; exactly one model role):
- "tflite": a `detect.tflite` ending in TFLite_Detection_PostProcess (uint8, int8 or float input).
- "saved_model": an exported SavedModel directory (`serving_default`: uint8 images in; detection_boxes,
  detection_scores, detection_classes, num_detections out).
- "frozen_graph": a TF1 `frozen_inference_graph.pb` (`image_tensor:0` -> `detection_*:0`).
- "labels" (optional): a `.pbtxt` or `.txt` label map (see labels.py).

Options: models/tf_detection/family.py (thresholds, label offset and field, TFLite threads and interpreters,
float TFLite normalisation, input_size for SavedModel / frozen graph, frozen-graph session threads).

Threads vs interpreters: unless the options set them, the TFLite pool follows the replica's thread layout
(`InterpreterPool.for_spec`: one interpreter per batch computing at once, serving.threads.intra_op threads each).
Measured for the quantized SSD MobileNet v1 on 2 cores, predict alone (ms per image, batch 1 / batch 8): 1 x 1
thread 14 / 14; 1 x 2 threads 7.4-8.2 / 7.5-7.9; 2 interpreters x 1 thread 14 / 7.2-7.6. Alone, 1 x 2 answers one
image fastest; under load, with decoding taking a core, 2 x 1 served more (docs/benchmarks.md).
"""

from __future__ import annotations

import numpy as np

from models.outputs import Box, Detection, Detections
from models.tf_detection.backends import FrozenGraphBackend, RawDetections, SavedModelBackend, TFLiteBackend
from models.tf_detection.family import FAMILY, TFDetectionOptions
from models.tf_detection.labels import LabelMap
from models.tflite import InterpreterPool
from serve.model import Model


class TFDetectionModel(Model[Detections]):
    family = FAMILY
    output_type = Detections
    options: TFDetectionOptions

    def __init__(self, spec):
        super().__init__(spec)
        self.backend = None
        self.labels = LabelMap({}, 0)

    @property
    def concurrent_batches(self) -> int | None:
        pool = getattr(self.backend, "pool", None)  # TFLite: its interpreters; TF sessions take concurrent runs
        return pool.size if pool is not None else None

    def load_weights(self) -> None:
        weights, opts = self.spec.weights, self.options
        (fmt,) = self.family.weights.choose(weights).required  # one of FORMATS (+ optional labels)
        if fmt == "tflite":
            self.backend = TFLiteBackend(InterpreterPool.for_spec(weights[fmt], self.spec, opts),
                                         mean=opts.input_mean, std=opts.input_std)
        elif fmt == "saved_model":
            self.backend = SavedModelBackend(weights[fmt], opts.input_size, opts.signature)
        else:
            self.backend = FrozenGraphBackend(weights[fmt], opts.input_size, opts.intra_op_threads,
                                              opts.inter_op_threads)
        offset = opts.label_offset if opts.label_offset is not None else 1 if fmt == "tflite" else 0
        if "labels" in weights:
            self.labels = LabelMap.read(weights["labels"], offset, opts.label_field)
        else:
            self.labels = LabelMap({}, offset)

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        return self.backend.prepare(image), (image.shape[1], image.shape[0])

    def predict(self, inputs: list[np.ndarray]) -> list[RawDetections]:
        return self.backend.run(inputs)

    def postprocess(self, raw: RawDetections, meta: tuple[int, int]) -> Detections:
        width, height = meta
        keep = np.flatnonzero(raw.scores >= self.options.score_threshold)
        keep = keep[np.argsort(-raw.scores[keep], kind="stable")][: self.options.max_detections]
        detections = []
        for i in keep:
            # Normalised (ymin, xmin, ymax, xmax) of the (possibly stretched) network input == of the original.
            y1, x1, y2, x2 = np.clip(raw.boxes[i], 0.0, 1.0) * [height, width, height, width]
            box = Box(x1=float(x1), y1=float(y1), x2=float(x2), y2=float(y2))
            score = float(np.clip(raw.scores[i], 0.0, 1.0))
            label, key = self.labels.name(raw.classes[i]), self.labels.key(raw.classes[i])
            detections.append(Detection(label=label, class_id=key, score=score, box=box))
        return Detections(detections=detections, width=width, height=height)
