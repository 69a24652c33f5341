"""The lifecycle every model family implements: load -> preprocess -> predict (a batch) -> postprocess.

Families live under `models/` and know nothing of HTTP, socket.io or Ray. The runtime (`serve/runner.py`)
builds one from the catalog, calls `load()` once per replica and `infer_timed()` for every batch; the per-stage
timings it returns are exported as a histogram (`serve/metrics.py`), the same way for every family.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
from pydantic import BaseModel

from serve.family import Family, Options

Output = TypeVar("Output", bound=BaseModel)


@dataclass(frozen=True)
class ModelSpec:
    """What a family needs to build itself: resolved weight files by role, its options (the catalog's mapping
    or the family's typed options), device."""

    name: str
    weights: dict[str, Path] = field(default_factory=dict)
    options: Mapping[str, Any] | Options = field(default_factory=dict)
    device: str = "cpu"  # "cpu" or "cuda"
    #: How the replica runs the model (serving.threads resolved for the cores it may use): batches computing at
    #: once and threads per op. Families with their own pools (TFLite interpreters) size them from these.
    batches: int = 1
    intra_op: int = 1


@dataclass(frozen=True)
class StageTimings:
    """Seconds spent in each stage for one batch."""

    preprocess: float = 0.0
    predict: float = 0.0
    postprocess: float = 0.0


class Model(ABC, Generic[Output]):
    """A served vision model. Images come in as RGB uint8 arrays of shape (H, W, 3)."""

    #: the family's declaration: its options type and the weight roles `load()` checks.
    family: ClassVar[Family]
    #: pydantic type of one answer; the OpenAPI document and the catalog's `GET /<model>` read it.
    output_type: ClassVar[type[BaseModel]]

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        self.options = self.family.parse_options(spec.options)  # ValidationError naming the bad key

    def load(self) -> None:
        """Check the weight roles against the family's declaration, then read the weights. Raises ValueError
        naming the missing or unexpected roles, or whatever the family's loader raises."""
        try:
            self.family.weights.choose(self.spec.weights)
        except ValueError as exc:
            raise ValueError(f"{self.spec.name}: {exc} (got {sorted(self.spec.weights)})") from None
        self.load_weights()

    @abstractmethod
    def load_weights(self) -> None:
        """Read the weights (roles already checked) and build the network. Raises on malformed weights."""

    @abstractmethod
    def preprocess(self, image: np.ndarray) -> tuple[Any, Any]:
        """One RGB image -> (network input, metadata postprocess needs, e.g. the letterbox transform)."""

    @abstractmethod
    def predict(self, inputs: list[Any]) -> list[Any]:
        """A batch of network inputs -> one raw output per input."""

    @abstractmethod
    def postprocess(self, raw: Any, meta: Any) -> Output:
        """One raw output -> the typed answer, in the input image's pixel coordinates."""

    def render(self, image: np.ndarray, output: Output) -> np.ndarray:
        """The input image with the answer drawn on it; families that can draw override this."""
        raise NotImplementedError(f"{type(self).__name__} cannot draw its answers")

    @property
    def concurrent_batches(self) -> int | None:
        """How many batches this model can compute at once when it has a limit (a pool of N TFLite interpreters:
        N; a second batch would only wait for the interpreter, in smaller batches); None: no limit of its own."""
        return None

    @property
    def can_render(self) -> bool:
        return type(self).render is not Model.render

    def infer_timed(self, images: list[np.ndarray]) -> tuple[list[Output], StageTimings]:
        """Run a whole batch through the three stages; also returns how long each took."""
        t0 = time.perf_counter()
        prepared = [self.preprocess(image) for image in images]
        t1 = time.perf_counter()
        raws = self.predict([inputs for inputs, _ in prepared])
        t2 = time.perf_counter()
        outputs = [self.postprocess(raw, meta) for raw, (_, meta) in zip(raws, prepared)]
        t3 = time.perf_counter()
        return outputs, StageTimings(t1 - t0, t2 - t1, t3 - t2)

    def infer(self, images: list[np.ndarray]) -> list[Output]:
        """A whole batch through the three stages."""
        return self.infer_timed(images)[0]
