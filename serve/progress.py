"""Load progress of a model, shared through Ray's internal key-value store.

A replica loads its model in its constructor, and Serve calls nothing on it before that returns, so the replica
writes its progress (a weight download's bytes, then the load's seconds) to the cluster's KV store, and the
catalog app (GET /, /readyz, the playground) and `runway-models serve` read it from there. Cleared once loaded.
"""

from __future__ import annotations

import json
import time

from serve.protocols.types import LoadProgress

NAMESPACE = "runway-models"
#: A download calls back per chunk: write when this much time passed or this share of the file arrived since
#: the last write (a burst followed by a stall must not leave a stale figure).
MIN_INTERVAL_S, MIN_SHARE = 0.25, 0.05


def _key(model: str) -> bytes:
    return f"load-progress/{model}".encode()


class ProgressReporter:
    """What one replica writes while it loads `model`."""

    def __init__(self, model: str):
        self.model = model
        self.phase_started = time.monotonic()
        self.phase: str | None = None
        self.last_write, self.last_bytes = 0.0, 0

    def downloading(self, file: str, bytes_done: int, bytes_total: int | None) -> None:
        self._enter("downloading")
        share = (bytes_done - self.last_bytes) / bytes_total if bytes_total else 0.0
        if time.monotonic() - self.last_write >= MIN_INTERVAL_S or share >= MIN_SHARE or bytes_done == bytes_total:
            self.last_bytes = bytes_done
            self._put(LoadProgress(phase="downloading", file=file, bytes_done=bytes_done, bytes_total=bytes_total,
                                   seconds=self._seconds()))

    def loading(self) -> None:
        self._enter("loading")
        self._put(LoadProgress(phase="loading", seconds=0.0))

    def done(self) -> None:
        from ray.experimental.internal_kv import _internal_kv_del

        _internal_kv_del(_key(self.model), namespace=NAMESPACE)

    def _enter(self, phase: str) -> None:
        if self.phase != phase:
            self.phase, self.phase_started = phase, time.monotonic()

    def _seconds(self) -> float:
        return round(time.monotonic() - self.phase_started, 1)

    def _put(self, progress: LoadProgress) -> None:
        from ray.experimental.internal_kv import _internal_kv_put

        self.last_write = time.monotonic()
        # The phase's start goes along (wall clock, as readers are other processes), so a reader counts its
        # seconds up to the moment it reads.
        value = {"progress": progress.model_dump(mode="json"), "phase_started": time.time() - self._seconds()}
        _internal_kv_put(_key(self.model), json.dumps(value).encode(), overwrite=True, namespace=NAMESPACE)


def read_progress(model: str) -> LoadProgress | None:
    """The latest progress a replica of `model` wrote, its seconds counted up to now; None when none loads."""
    from ray.experimental.internal_kv import _internal_kv_get

    raw = _internal_kv_get(_key(model), namespace=NAMESPACE)
    if not raw:
        return None
    value = json.loads(raw)
    progress = LoadProgress.model_validate(value["progress"])
    progress.seconds = round(max(0.0, time.time() - value["phase_started"]), 1)
    return progress
