"""The protocol-neutral data plane of one model replica: load the family, admit, decode, batch, infer.

HTTP and socket.io both call `ModelRunner.query`; it knows nothing of either. Batching uses Ray Serve's
`@serve.batch`; the model itself runs in a worker thread so the event loop keeps accepting (and dropping
stale socket.io frames) while a batch computes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import numpy as np
from ray import serve

from serve.catalog import Entry
from serve.codecs import decode_image, encode_image
from serve.admission import Admission
from serve.errors import InvalidPayload, ModelUnavailable, ServeError
from serve.metrics import ModelMetrics
from serve.model import Model, ModelSpec
from serve.describe import describe
from serve.protocols.types import ModelInfo, ModelStatus, QueryRequest, QueryResponse, Timings
from serve.registry import family_of
from serve.weights import WeightsNotFetched, local_weights

logger = logging.getLogger("runway_models")


def build_model(entry: Entry, base_dir: Path, device: str = "cpu") -> Model:
    """Instantiate (not load) the family the entry names, with its weight paths resolved."""
    assert entry.serving is not None
    serving = entry.serving
    weights = {role: local_weights(entry.name, role, w, base_dir) for role, w in serving.weights.items()}
    spec = ModelSpec(name=entry.name, weights=weights, options=serving.options, device=device)
    return family_of(serving.implementation).build(spec)


class ModelRunner:
    def __init__(self, entry: Entry, base_dir: Path, device: str = "cpu"):
        assert entry.serving is not None, "Docker-only entries are not served by Ray"
        self.entry = entry
        self.base_dir = base_dir
        self.device = device
        self.limits = entry.serving.limits
        self.admission = Admission(entry.name, entry.serving.latency_budget_s, entry.serving.max_ongoing_requests,
                                   first_batch=entry.serving.batching.max_batch_size)
        self.metrics = ModelMetrics(entry.name)
        self.model: Model | None = None
        self.status = ModelStatus(state="loading")
        self.output_type = None  # known once the family's module imports
        self.configure(entry.serving.batching.max_batch_size, entry.serving.batching.batch_wait_timeout_s)

    def load(self) -> None:
        """Load the weights; a failure is kept as the model's status instead of killing the replica."""
        t0 = time.perf_counter()
        try:
            model = build_model(self.entry, self.base_dir, self.device)
            self.output_type = type(model).output_type
            model.load()
        except WeightsNotFetched as exc:  # weights the user has not downloaded: not available, not broken
            self.status = ModelStatus(state="not_available", detail=str(exc))
            self.metrics.loaded(False, time.perf_counter() - t0)
            return
        except Exception as exc:  # any loader error: keep serving the others, report why
            logger.exception("model %s failed to load", self.entry.name)
            self.status = ModelStatus(state="failed", detail=f"{type(exc).__name__}: {exc}")
            self.metrics.loaded(False, time.perf_counter() - t0)
            return
        self.model = model
        seconds = time.perf_counter() - t0
        self.status = ModelStatus(state="ready", load_seconds=round(seconds, 3))
        self.metrics.loaded(True, seconds)

    def info(self) -> ModelInfo:
        return describe(self.entry, self.status, self.output_type)

    def configure(self, max_batch_size: int, batch_wait_timeout_s: float) -> None:
        self._infer_batch.set_max_batch_size(max_batch_size)
        self._infer_batch.set_batch_wait_timeout_s(batch_wait_timeout_s)

    async def query(self, request: QueryRequest, transport: str) -> QueryResponse:
        """Decode one payload and run it in the next batch, counting the request by transport and status.
        Raises ServeError subclasses on bad input."""
        start, status = time.perf_counter(), 500
        try:
            response = await self._query(request, start)
            status = 200
            return response
        except ServeError as exc:
            status = exc.status
            raise
        finally:
            self.metrics.request(transport, status, time.perf_counter() - start)

    async def _query(self, request: QueryRequest, start: float) -> QueryResponse:
        if self.model is None:
            raise ModelUnavailable(f"model {self.entry.name} is not ready: {self.status.detail or self.status.state}")
        if request.render and not self.model.can_render:
            raise InvalidPayload(f"model {self.entry.name} cannot draw its answer; send render=false")
        self.admission.enter()
        answered = False
        try:
            # Decoding (PIL releases the GIL) runs beside the model's thread, not on the event loop.
            image = await asyncio.to_thread(decode_image, request.data, self.limits.max_bytes, self.limits.max_pixels)
            result, batch_size, queue_s, inference_s = await self._infer_batch((image, time.perf_counter()))
            answered = True
            drawn = await asyncio.to_thread(self._draw, image, result) if request.render else None
            total_s = time.perf_counter() - start
        finally:
            self.admission.leave(time.perf_counter() - start, answered)
        timings = Timings(queue_ms=queue_s * 1e3, inference_ms=inference_s * 1e3, total_ms=total_s * 1e3)
        return QueryResponse(model=self.entry.name, id=request.id, result=result, batch_size=batch_size,
                             timings=timings, image=drawn)

    def _draw(self, image: np.ndarray, result) -> str:
        return encode_image(self.model.render(image, result))

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.005)
    async def _infer_batch(self, items: list[tuple[np.ndarray, float]]) -> list[tuple]:
        started = time.perf_counter()
        waits = [started - enqueued for _, enqueued in items]
        outputs, stages = await asyncio.to_thread(self.model.infer_timed, [image for image, _ in items])
        inference_s = time.perf_counter() - started
        self.metrics.batch(len(items), inference_s, waits, stages)
        return [(out, len(items), wait, inference_s) for out, wait in zip(outputs, waits)]
