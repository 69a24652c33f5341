"""The lifecycle every model family implements: load -> preprocess -> predict (a batch) -> postprocess.

Families live under `models/` and know nothing of HTTP, socket.io or Ray. The runtime (`serve/app.py`)
builds one from the catalog, calls `load()` once per replica and `infer()` for every batch; `infer()`
records per-stage timings so every family reports them the same way.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
from pydantic import BaseModel

Output = TypeVar("Output", bound=BaseModel)


@dataclass(frozen=True)
class ModelSpec:
    """What a family needs to build itself: resolved weight files by role, free-form options, device."""

    name: str
    weights: dict[str, Path] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"  # "cpu" or "cuda"


@dataclass
class StageTimings:
    """Seconds spent in each stage for one batch."""

    preprocess: float = 0.0
    predict: float = 0.0
    postprocess: float = 0.0

    @property
    def total(self) -> float:
        return self.preprocess + self.predict + self.postprocess


class Model(ABC, Generic[Output]):
    """A served vision model. Images come in as RGB uint8 arrays of shape (H, W, 3)."""

    #: pydantic type of one answer; the OpenAPI document and the catalog's `GET /<model>` read it.
    output_type: ClassVar[type[BaseModel]]

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        self.ready = False
        self.last_timings = StageTimings()

    @abstractmethod
    def load(self) -> None:
        """Read the weights and build the network. Raises on missing or malformed weights."""

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
    def can_render(self) -> bool:
        return type(self).render is not Model.render

    def infer(self, images: list[np.ndarray]) -> list[Output]:
        """Run a whole batch through the three stages and record how long each took."""
        t0 = time.perf_counter()
        prepared = [self.preprocess(image) for image in images]
        t1 = time.perf_counter()
        raws = self.predict([inputs for inputs, _ in prepared])
        t2 = time.perf_counter()
        outputs = [self.postprocess(raw, meta) for raw, (_, meta) in zip(raws, prepared)]
        t3 = time.perf_counter()
        self.last_timings = StageTimings(t1 - t0, t2 - t1, t3 - t2)
        return outputs

    def load_and_mark_ready(self) -> float:
        """Load, flip `ready`, and return the load time in seconds."""
        t0 = time.perf_counter()
        self.load()
        self.ready = True
        return time.perf_counter() - t0
