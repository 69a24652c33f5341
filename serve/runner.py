"""The protocol-neutral data plane of one model replica: load the family, admit, decode, batch, infer.

HTTP and socket.io both call `ModelRunner.query`; it knows nothing of either, nor of Ray. Batching is
`serve.batching.BatchQueue`; the model itself runs in a worker thread so the event loop keeps accepting (and
dropping stale socket.io frames) while a batch computes. The runner is given a function that builds its (unloaded)
model: the Serve replica passes `build_model` bound to the catalog entry, tests pass their fixture families.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np

from serve.admission import Admission
from serve.batching import BatchQueue
from serve.catalog import Entry, Threads
from serve.codecs import check_pixels, decode_bytes, decode_image, encode_image
from serve.errors import InvalidPayload, ModelUnavailable, ServeError
from serve.heap import HeapTrimmer
from serve.metrics import ModelMetrics
from serve.model import Model, ModelSpec
from serve.describe import describe
from serve.protocols.types import ModelInfo, ModelStatus, QueryRequest, QueryResponse, Timings
from serve.progress import ProgressReporter
from serve.registry import family_of
from serve.threads import set_intra_op_threads, usable_cores
from serve.weights import WeightsNotFetched, local_weights

logger = logging.getLogger("runway_models")
#: One image as a protocol hands it over: a data URI / base64 text (native), encoded bytes or a decoded RGB uint8
#: array (H, W, 3) (Open Inference Protocol tensors).
ImageSource = Union[str, bytes, np.ndarray]


@dataclass
class Answer:
    """One image's answer, before any protocol shapes it."""

    result: Any  # the family's output_type
    batch_size: int
    timings: Timings
    drawn: np.ndarray | None = None  # with render: the input with the answer drawn


def build_model(entry: Entry, base_dir: Path, device: str = "cpu", progress: ProgressReporter | None = None,
                threads: Threads | None = None) -> Model:
    """Instantiate (not load) the family the entry names, with its weight paths resolved (downloaded when only
    a URL is there, reporting the bytes to `progress`), for the entry's thread layout (or `threads`) resolved for
    the cores this process may use."""
    assert entry.serving is not None
    serving = entry.serving

    def reporter(role: str):
        return (lambda done, total: progress.downloading(role, done, total)) if progress else None

    weights = {role: local_weights(entry.name, role, w, base_dir, reporter(role))
               for role, w in serving.weights.items()}
    batches, intra_op = (threads or serving.threads).resolve(usable_cores())
    spec = ModelSpec(name=entry.name, weights=weights, options=serving.options, device=device, batches=batches,
                     intra_op=intra_op)
    return family_of(serving.implementation).build(spec)


class ModelRunner:
    """One model's data plane. `build` makes the (unloaded) model; `load()` calls it once. `metrics`: where
    requests and batches are counted (default: the model's Ray metrics)."""

    def __init__(self, entry: Entry, build: Callable[[], Model], metrics: ModelMetrics | None = None):
        assert entry.serving is not None, "Docker-only entries are not served by Ray"
        self.entry = entry
        self.build = build
        self.limits = entry.serving.limits
        batching = entry.serving.batching
        self.admission = Admission(entry.name, entry.serving.latency_budget_s, entry.serving.max_ongoing_requests,
                                   first_batch=batching.max_batch_size)
        self.metrics = metrics if metrics is not None else ModelMetrics(entry.name)
        self.model: Model | None = None
        self.status = ModelStatus(state="loading")
        self.output_type = None  # known once the family's module imports
        # Sized from the cores this process may use (a Ray replica: the machine's or the pod's, not num_cpus).
        concurrent_batches, self.intra_op_threads = entry.serving.threads.resolve(usable_cores())
        self.decoding = 0  # admitted requests not yet in the batch queue
        self.batches = BatchQueue(self._infer_batch, batching.max_batch_size, batching.batch_wait_timeout_s,
                                  concurrency=concurrent_batches, arriving=lambda: self.decoding)
        self.heap = HeapTrimmer()
        self._trimming: asyncio.Task | None = None

    def load(self, progress: ProgressReporter | None = None) -> None:
        """Load the weights; a failure is kept as the model's status instead of killing the replica."""
        t0 = time.perf_counter()
        try:
            model = self.build()  # imports the family's framework
            self.output_type = type(model).output_type
            set_intra_op_threads(self.intra_op_threads)
            if progress:
                progress.loading()
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
        if self.entry.serving.threads.batches is None and model.concurrent_batches:  # a default, not a setting
            self.batches.concurrency = min(self.batches.concurrency, model.concurrent_batches)
        seconds = time.perf_counter() - t0
        self.status = ModelStatus(state="ready", load_seconds=round(seconds, 3))
        self.metrics.loaded(True, seconds)

    def info(self) -> ModelInfo:
        return describe(self.entry, self.status, self.output_type)

    def configure(self, max_batch_size: int, batch_wait_timeout_s: float) -> None:
        self.batches.configure(max_batch_size, batch_wait_timeout_s)

    async def query(self, request: QueryRequest, transport: str) -> QueryResponse:
        """The native route: one data-URI payload -> QueryResponse. Raises ServeError subclasses on bad input."""
        answer = await self.run(request.data, request.render, transport)
        image = await asyncio.to_thread(encode_image, answer.drawn) if answer.drawn is not None else None
        return QueryResponse(model=self.entry.name, id=request.id, result=answer.result,
                             batch_size=answer.batch_size, timings=answer.timings, image=image)

    async def run(self, source: ImageSource, render: bool, transport: str) -> Answer:
        """Decode one image (any ImageSource) and run it in the next batch, counting the request by transport
        and status: what every protocol calls. Raises ServeError subclasses on bad input."""
        start, status = time.perf_counter(), 500
        try:
            answer = await self._run(source, render, start)
            status = 200
            return answer
        except ServeError as exc:
            status = exc.status
            raise
        finally:
            self.metrics.request(transport, status, time.perf_counter() - start)

    def _decode(self, source: ImageSource) -> np.ndarray:
        if isinstance(source, str):
            return decode_image(source, self.limits.max_bytes, self.limits.max_pixels)
        if isinstance(source, bytes):
            return decode_bytes(source, self.limits.max_bytes, self.limits.max_pixels)
        return check_pixels(source, self.limits.max_pixels)

    async def _run(self, source: ImageSource, render: bool, start: float) -> Answer:
        if self.model is None:
            raise ModelUnavailable(f"model {self.entry.name} is not ready: {self.status.detail or self.status.state}")
        if render and not self.model.can_render:
            raise InvalidPayload(f"model {self.entry.name} cannot draw its answer; send render=false")
        self.admission.enter()
        answered = False
        try:
            # Decoding (PIL releases the GIL) runs beside the model's thread, not on the event loop.
            self.decoding += 1
            try:
                image = await asyncio.to_thread(self._decode, source)
            finally:
                self.decoding -= 1
            result, batch_size, queue_s, inference_s = await self.batches.submit((image, time.perf_counter()))
            answered = True
            drawn = await asyncio.to_thread(self.model.render, image, result) if render else None
            total_s = time.perf_counter() - start
        finally:
            self.admission.leave(time.perf_counter() - start, answered)
            if self.admission.in_flight == 0 and self.heap.claim():  # a burst is over: give its memory back
                self._trimming = asyncio.get_running_loop().create_task(asyncio.to_thread(self.heap.run))
        timings = Timings(queue_ms=queue_s * 1e3, inference_ms=inference_s * 1e3, total_ms=total_s * 1e3)
        return Answer(result, batch_size, timings, drawn)

    async def _infer_batch(self, items: list[tuple[np.ndarray, float]]) -> list[tuple]:
        started = time.perf_counter()
        waits = [started - enqueued for _, enqueued in items]
        outputs, stages = await asyncio.to_thread(self.model.infer_timed, [image for image, _ in items])
        inference_s = time.perf_counter() - started
        self.metrics.batch(len(items), inference_s, waits, stages)
        return [(out, len(items), wait, inference_s) for out, wait in zip(outputs, waits)]
