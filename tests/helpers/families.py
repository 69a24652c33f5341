"""Tiny model families for the in-process tests, one per behaviour: they load nothing, run in microseconds and
need no weights, so the protocol and runner layers are tested without Ray, torch or ../shared.

Each is declared like a real family (`serve.family.Family`: options, weight roles, model class) and registered in
`serve.registry.IMPLEMENTATIONS` for a test only (the `fixture_families` fixture of tests/conftest.py), under the
names of FIXTURE_FAMILIES, so entries naming them validate as catalog entries (options included) and are built by
the runtime's own `build_model`.
"""

from __future__ import annotations

import threading
import time

import numpy as np
from pydantic import BaseModel, Field

from serve.family import Family, Options, WeightRoles
from serve.model import Model


class Shape(BaseModel):
    """What the echo families answer: the image they were given, measured."""

    width: int
    height: int
    mean_rgb: list[float] = Field(description="mean of each channel, 0-255")


def _declare(model: str, options: type[Options] = Options) -> Family:
    return Family(options=options, weights=WeightRoles.all_of(), model=f"tests.helpers.families:{model}")


class _Measures(Model[Shape]):
    """Answers every image with its size and mean colour (so a test can tell which image an answer is for)."""

    output_type = Shape

    def load_weights(self) -> None:
        pass  # no weight files (the family declares no roles)

    def preprocess(self, image: np.ndarray):
        return image, None

    def predict(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return inputs

    def postprocess(self, raw: np.ndarray, meta) -> Shape:
        return Shape(width=raw.shape[1], height=raw.shape[0], mean_rgb=[float(c) for c in raw.mean(axis=(0, 1))])


class EchoModel(_Measures):
    """Measures the image and can draw: its drawing is the image inverted."""

    family = _declare("EchoModel")

    def render(self, image: np.ndarray, output: Shape) -> np.ndarray:
        return 255 - image


class CannotDrawModel(_Measures):
    """Measures the image and cannot draw (no `render`): `render: true` must be refused."""

    family = _declare("CannotDrawModel")


class RaisesModel(_Measures):
    """Every batch fails inside the model, as a family bug would."""

    family = _declare("RaisesModel")

    def predict(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        raise RuntimeError("the raises fixture family always fails (internal detail for the log only)")


class FailsToLoadModel(_Measures):
    """Its weights never load, as truncated weight files would."""

    family = _declare("FailsToLoadModel")

    def load_weights(self) -> None:
        raise ValueError("weights file is truncated (fixture family)")


class SlowOptions(Options):
    delay_s: float = Field(0.2, ge=0, description="seconds each batch takes, whatever its size")
    concurrent_batches: int | None = Field(None, ge=1, description="the limit the model declares (Model.concurrent_batches)")


class SlowModel(_Measures):
    """Takes `options.delay_s` per batch and records each batch's size, so tests can watch requests queue up and
    share batches."""

    family = _declare("SlowModel", SlowOptions)

    def __init__(self, spec):
        super().__init__(spec)
        self.batch_sizes: list[int] = []
        self._lock = threading.Lock()

    @property
    def concurrent_batches(self) -> int | None:
        return self.options.concurrent_batches

    def predict(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        with self._lock:
            self.batch_sizes.append(len(inputs))
        time.sleep(self.options.delay_s)
        return inputs


ECHO, CANNOT_DRAW, RAISES = EchoModel.family, CannotDrawModel.family, RaisesModel.family
FAILS_TO_LOAD, SLOW = FailsToLoadModel.family, SlowModel.family
#: implementation name -> the declaration's import path, as serve.registry.IMPLEMENTATIONS holds them
FIXTURE_FAMILIES = {
    "test-echo": "tests.helpers.families:ECHO",
    "test-cannot-draw": "tests.helpers.families:CANNOT_DRAW",
    "test-raises": "tests.helpers.families:RAISES",
    "test-fails-to-load": "tests.helpers.families:FAILS_TO_LOAD",
    "test-slow": "tests.helpers.families:SLOW",
}
