"""Admission by latency budget: a replica takes a request only if it can answer it in time.

A fixed cap on requests in flight lets in far more than a slow model drains (yolo at 32 in flight + 64 queued
kept admitted requests waiting 12-30 s under overload). Instead the replica measures its drain rate (the time
between answers while it is busy, or a request's own time when it is not: a moving average, so decoding, batching
and the machine's load are all in it) and admits a request when the ones ahead of it, and it, fit in the model's
latency budget; the rest are refused at once with a Retry-After derived from that rate. The cap stays as an
upper bound."""

from __future__ import annotations

import math
import time

from serve.errors import Overloaded

#: Weight of the newest measurement in the moving average of a request's cost.
SMOOTHING = 0.2


class Admission:
    def __init__(self, name: str, budget_s: float, max_in_flight: int, first_batch: int = 1):
        self.name, self.budget_s, self.max_in_flight = name, budget_s, max_in_flight
        self.first_batch = first_batch  # admitted before the first answer gives a rate: one batch
        self.in_flight = 0
        self.cost_s: float | None = None  # seconds between answers at saturation; unknown until the first one
        self.last_answer: float | None = None

    def expected_wait_s(self) -> float:
        """Seconds until a request admitted now is answered: the model drains one request per `cost_s`."""
        return (self.in_flight + 1) * (self.cost_s or 0.0)

    def enter(self) -> None:
        """Admit one request or raise Overloaded (503, Retry-After)."""
        self.check()
        self.in_flight += 1

    def check(self) -> None:
        """Raise Overloaded if a request arriving now would not be admitted. Called before its body is read
        too, so a refusal costs no body transfer from the proxy."""
        unmeasured = self.cost_s is None and self.in_flight >= self.first_batch
        if self.in_flight >= self.max_in_flight or unmeasured or self.expected_wait_s() > self.budget_s:
            retry_after = max(1, math.ceil(self.in_flight * (self.cost_s or 0.0)))
            error = Overloaded(f"model {self.name} is busy: {self.in_flight} requests ahead would take about "
                               f"{self.expected_wait_s():.1f} s (budget {self.budget_s:g} s); retry after "
                               f"{retry_after} s")
            error.headers = {"Retry-After": str(retry_after)}
            raise error

    def leave(self, took_s: float, answered: bool) -> None:
        """One request is done after `took_s` in this replica; `answered`: it reached the model (errors on bad
        input cost almost nothing and would make the replica look faster than it is)."""
        now = time.monotonic()
        busy = self.in_flight > 1 and self.last_answer is not None
        self.in_flight -= 1
        if not answered:
            return
        sample = now - self.last_answer if busy else took_s
        self.last_answer = now
        self.cost_s = sample if self.cost_s is None else (1 - SMOOTHING) * self.cost_s + SMOOTHING * sample
