"""Per-model Prometheus metrics, exported through Ray's metrics agent next to Ray's own `ray_serve_*`.

Ray aggregates these across replicas and nodes (a `prometheus_client` registry would live per process and
never be aggregated), and adds application/deployment/replica labels; every metric here also carries `model`.
Scrape them at the node's metrics export port (`--metrics-port`, 8080 by default) or, locally, through the
catalog app's `GET /metrics`, which relays that page. Ray prefixes application metrics with `ray_`, so
`runway_requests_total` is scraped as `ray_runway_requests_total`.
"""

from __future__ import annotations

from dataclasses import asdict

from ray.serve.metrics import Counter, Gauge, Histogram

from serve.model import StageTimings

LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]
BATCH_BUCKETS = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64, 128, 256]


class ModelMetrics:
    """The metrics of one served model; `model` is filled in on every sample."""

    def __init__(self, model: str):
        self.tags = {"model": model}
        self.requests = Counter("runway_requests_total", "Requests by transport and status",
                                tag_keys=("model", "transport", "status"))
        self.latency = Histogram("runway_request_seconds", "Total time in the replica, decode to answer",
                                 boundaries=LATENCY_BUCKETS, tag_keys=("model", "transport"))
        self.queue_wait = Histogram("runway_queue_wait_seconds", "Time a request waited for its batch to start",
                                    boundaries=LATENCY_BUCKETS, tag_keys=("model",))
        self.inference = Histogram("runway_inference_seconds", "Time the model took for one batch",
                                   boundaries=LATENCY_BUCKETS, tag_keys=("model",))
        self.stage = Histogram("runway_stage_seconds", "Time one batch spent in a stage of the model "
                               "(preprocess, predict, postprocess)", boundaries=LATENCY_BUCKETS,
                               tag_keys=("model", "stage"))
        self.batch_size = Histogram("runway_batch_size", "Images per batch", boundaries=BATCH_BUCKETS,
                                    tag_keys=("model",))
        self.dropped_frames = Counter("runway_dropped_frames_total",
                                      "socket.io frames replaced by a newer one before inference",
                                      tag_keys=("model",))
        self.load_seconds = Gauge("runway_model_load_seconds", "Time to load the weights", tag_keys=("model",))
        self._state = (0.0, 0.0)  # (ready, load seconds), re-sent by refresh()
        self.ready = Gauge("runway_model_ready", "1 once the model has loaded, 0 if it failed",
                           tag_keys=("model",))

    def request(self, transport: str, status: int, seconds: float) -> None:
        self.requests.inc(1, tags={**self.tags, "transport": transport, "status": str(status)})
        self.latency.observe(seconds, tags={**self.tags, "transport": transport})

    def batch(self, size: int, inference_s: float, waits: list[float], stages: StageTimings) -> None:
        self.batch_size.observe(size, tags=self.tags)
        self.inference.observe(inference_s, tags=self.tags)
        for stage, seconds in asdict(stages).items():  # stage="preprocess", "predict", "postprocess"
            self.stage.observe(seconds, tags={**self.tags, "stage": stage})
        for wait in waits:
            self.queue_wait.observe(wait, tags=self.tags)

    def dropped(self, count: int = 1) -> None:
        self.dropped_frames.inc(count, tags=self.tags)

    def loaded(self, ok: bool, seconds: float) -> None:
        self._state = (1.0 if ok else 0.0, seconds)
        self.refresh()

    def refresh(self) -> None:
        """Re-send the gauges: Ray's metrics agent evicts a gauge not reported for two export intervals."""
        ready, seconds = self._state
        self.ready.set(ready, tags=self.tags)
        self.load_seconds.set(seconds, tags=self.tags)
