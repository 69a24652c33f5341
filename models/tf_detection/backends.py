"""Runners for the three export formats of the TF Object Detection API. Each turns an RGB image into its network
input (`prepare`) and a batch of inputs into `RawDetections` (`run`): boxes normalised as (ymin, xmin, ymax,
xmax) of the image it was given, raw class values, scores, already cut to the model's detection count.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from models.images import resize
from models.tflite import InterpreterPool
from models.tf_graph import isolated_session, read_graph_def

OUTPUT_KEYS = ("detection_boxes", "detection_classes", "detection_scores", "num_detections")


class RawDetections(NamedTuple):
    boxes: np.ndarray  # (n, 4) ymin, xmin, ymax, xmax in [0, 1]
    classes: np.ndarray  # (n,) as the model emits them (see labels.py for the offset)
    scores: np.ndarray  # (n,)


def _cut(boxes, classes, scores, count) -> RawDetections:
    n = int(count)
    return RawDetections(np.asarray(boxes[:n]), np.asarray(classes[:n]), np.asarray(scores[:n]))


# --- TFLite -----------------------------------------------------------------------------------------------------


def _detection_outputs(interpreter) -> tuple[int, int, int, int]:
    """Tensor indices of (boxes, classes, scores, count). The TFLite_Detection_PostProcess op always emits them
    in that order, but exporters list the model outputs in different orders (TF1: boxes first; TF2: scores
    first), so follow the op when it can be found, else trust the TF1 order."""
    try:
        for op in interpreter._get_ops_details():  # no public API for this; fall through if it changes
            if op["op_name"] == "TFLite_Detection_PostProcess":
                return tuple(int(i) for i in op["outputs"][:4])
    except AttributeError:
        pass
    outputs = interpreter.get_output_details()
    if len(outputs) < 4:
        raise ValueError(f"expected 4 detection outputs (boxes, classes, scores, count), got {len(outputs)}")
    return tuple(d["index"] for d in outputs[:4])


class TFLiteBackend:
    """A TFLite detector run on an `InterpreterPool`."""

    def __init__(self, pool: InterpreterPool, mean: float = 127.5, std: float = 127.5):
        self.pool = pool
        detail = self.pool.probe.get_input_details()[0]
        self.input_index = detail["index"]
        self.height, self.width = int(detail["shape"][1]), int(detail["shape"][2])
        self.dtype = np.dtype(detail["dtype"])
        self.scale, self.zero_point = detail["quantization"]
        self.mean, self.std = mean, std
        self.outputs = _detection_outputs(self.pool.probe)

    def prepare(self, rgb: np.ndarray) -> np.ndarray:
        pixels = resize(rgb, (self.width, self.height))
        if self.dtype == np.uint8:
            # uint8 image models take raw pixels: their input quantisation (1/128, 128 for SSD) *is* the
            # normalisation, so no arithmetic is needed (or wanted: it would round).
            return np.ascontiguousarray(pixels, dtype=np.uint8)
        normalised = (pixels.astype(np.float32) - self.mean) / self.std
        if self.dtype == np.int8:
            quantised = np.round(normalised / self.scale + self.zero_point)
            return np.clip(quantised, -128, 127).astype(np.int8)
        return normalised.astype(self.dtype)

    def _invoke(self, interpreter, x: np.ndarray) -> RawDetections:
        interpreter.set_tensor(self.input_index, x[None])
        interpreter.invoke()
        boxes, classes, scores, count = (interpreter.get_tensor(i) for i in self.outputs)  # copies
        return _cut(boxes[0], classes[0], scores[0], np.ravel(count)[0])

    def run(self, inputs: list[np.ndarray]) -> list[RawDetections]:
        return self.pool.map(self._invoke, inputs)


# --- SavedModel and frozen graph ----------------------------------------------------------------------------------


class _TensorBackend:
    """Exporters of full TF graphs take uint8 images of any size; images of one size share one call when the
    input's batch dimension is free (the stock exporter fixes it to 1: then each image is its own call).
    `input_size` resizes every image first, which makes every batch one call."""

    batchable = False

    def __init__(self, input_size: tuple[int, int] | None):
        self.input_size = input_size

    def prepare(self, rgb: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(resize(rgb, self.input_size), dtype=np.uint8)

    def _call(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def run(self, inputs: list[np.ndarray]) -> list[RawDetections]:
        results: list[RawDetections | None] = [None] * len(inputs)
        groups: dict[tuple, list[int]] = {}
        for i, x in enumerate(inputs):
            groups.setdefault(x.shape if self.batchable else (i,), []).append(i)
        for members in groups.values():
            out = self._call(np.stack([inputs[i] for i in members]))
            for row, i in enumerate(members):
                results[i] = _cut(*(out[key][row] for key in OUTPUT_KEYS))
        return results


class SavedModelBackend(_TensorBackend):
    """`tf.saved_model.load` + the `serving_default` signature (eager; thread limits are process-wide in TF2,
    so they are set by whoever initialises TensorFlow first)."""

    def __init__(self, path: Path, input_size: tuple[int, int] | None = None, signature: str = "serving_default"):
        import tensorflow as tf

        super().__init__(input_size)
        self.tf = tf
        self.loaded = tf.saved_model.load(str(path))  # keep a reference: the signature needs its variables
        if signature not in self.loaded.signatures:
            raise ValueError(f"SavedModel has no signature {signature!r}; it has {sorted(self.loaded.signatures)}")
        self.fn = self.loaded.signatures[signature]
        _, specs = self.fn.structured_input_signature
        if len(specs) != 1:
            raise ValueError(f"expected one image input, the signature takes {sorted(specs)}")
        ((self.input_key, spec),) = specs.items()
        self.input_dtype = spec.dtype
        self.batchable = spec.shape.rank == 4 and spec.shape[0] is None
        missing = set(OUTPUT_KEYS) - set(self.fn.structured_outputs)
        if missing:
            raise ValueError(f"signature {signature!r} lacks outputs {sorted(missing)}")

    def _call(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        out = self.fn(**{self.input_key: self.tf.cast(batch, self.input_dtype)})
        return {key: out[key].numpy() for key in OUTPUT_KEYS}


class FrozenGraphBackend(_TensorBackend):
    """A TF1 `frozen_inference_graph.pb`: `image_tensor:0` uint8 in, `detection_*:0` out, in its own graph and
    session (own thread pools) so it coexists with other models in the process."""

    def __init__(
        self, path: Path, input_size: tuple[int, int] | None = None, intra_threads: int = 2, inter_threads: int = 1
    ):
        super().__init__(input_size)
        self.graph, self.session = isolated_session(read_graph_def(path), intra_threads, inter_threads)
        self.input = self.graph.get_tensor_by_name("image_tensor:0")
        self.outputs = {key: self.graph.get_tensor_by_name(key + ":0") for key in OUTPUT_KEYS}
        shape = self.input.shape
        self.batchable = shape.rank == 4 and shape[0] is None

    def _call(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        return self.session.run(self.outputs, {self.input: batch})
