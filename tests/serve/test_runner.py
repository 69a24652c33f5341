"""The protocol-neutral runner with the fixture families, in process: loading and its failure, answers and their
timings, requests sharing batches, drawing, errors counted by status. No Ray, no weights."""

from __future__ import annotations

import asyncio

import pytest

from serve.errors import InvalidImage, InvalidPayload, ModelUnavailable, PayloadTooLarge
from serve.protocols.types import QueryRequest
from tests.helpers.inprocess import fixture_entry, image_uri, loaded_runner


def test_a_loaded_runner_answers_with_the_model_and_times_each_part(fixture_families):
    runner = loaded_runner(fixture_entry("echo", "test-echo"))
    assert runner.status.state == "ready" and runner.status.load_seconds is not None
    response = asyncio.run(runner.query(QueryRequest(data=image_uri(40, 30, (10, 20, 30)), id="a"), "http"))
    assert response.model == "echo" and response.id == "a" and response.batch_size == 1
    assert response.result.width == 40 and response.result.height == 30
    assert [round(c) for c in response.result.mean_rgb] == [10, 20, 30]
    timings = response.timings
    assert timings.total_ms >= timings.queue_ms + timings.inference_ms >= 0
    assert runner.metrics.requests_seen == [("http", 200)] and runner.metrics.batches_seen == [1]
    assert runner.info().output_schema["title"].startswith("QueryResponse")


def test_a_model_that_fails_to_load_is_failed_with_the_reason_and_answers_503(fixture_families):
    runner = loaded_runner(fixture_entry("broken", "test-fails-to-load"))
    assert runner.status.state == "failed"
    assert "ValueError" in runner.status.detail and "truncated" in runner.status.detail
    with pytest.raises(ModelUnavailable) as info:
        asyncio.run(runner.query(QueryRequest(data=image_uri()), "http"))
    assert "truncated" in info.value.detail and info.value.headers["Retry-After"]
    assert runner.metrics.requests_seen == [("http", 503)]
    assert runner.info().status.state == "failed"


def test_concurrent_requests_share_batches_and_the_wait_shows_in_their_timings(fixture_families):
    entry = fixture_entry("slow", "test-slow", options={"delay_s": 0.3},
                          batching={"max_batch_size": 4, "batch_wait_timeout_s": 0.0})
    runner = loaded_runner(entry)

    async def burst():
        first = asyncio.ensure_future(runner.query(QueryRequest(data=image_uri(), id=0), "http"))
        await asyncio.sleep(0.1)  # the first batch is computing: the next three queue behind it, together
        # (before a first answer gives a rate, admission lets in one batch's worth: 4 in flight)
        rest = [runner.query(QueryRequest(data=image_uri(), id=i), "socketio") for i in range(1, 4)]
        return await asyncio.gather(first, *rest)

    responses = asyncio.run(burst())
    print("batches:", runner.model.batch_sizes, "timings (ms):",
          [(round(r.timings.queue_ms), round(r.timings.inference_ms), round(r.timings.total_ms)) for r in responses])
    assert [r.id for r in responses] == [0, 1, 2, 3]
    assert runner.model.batch_sizes == [1, 3] and [r.batch_size for r in responses] == [1, 3, 3, 3]
    assert all(r.timings.inference_ms >= 300 for r in responses)  # the family sleeps 0.3 s per batch
    assert [round(stages.predict, 1) >= 0.3 for stages in runner.metrics.stages_seen] == [True, True]
    assert all(r.timings.queue_ms >= 100 for r in responses[1:])  # they waited for the first batch to end
    assert sorted(runner.metrics.requests_seen) == [("http", 200)] + [("socketio", 200)] * 3


def test_reconfigure_changes_the_batch_cap(fixture_families):
    runner = loaded_runner(fixture_entry("slow", "test-slow", options={"delay_s": 0.05},
                                         batching={"max_batch_size": 8, "batch_wait_timeout_s": 0.2}))
    runner.configure(2, 0.2)  # what Serve's user_config does at run time

    async def burst():
        return await asyncio.gather(*(runner.query(QueryRequest(data=image_uri()), "http") for _ in range(5)))

    asyncio.run(burst())
    assert max(runner.model.batch_sizes) == 2 and sum(runner.model.batch_sizes) == 5


def test_render_draws_only_for_families_that_can(fixture_families):
    echo = loaded_runner(fixture_entry("echo", "test-echo"))
    drawn = asyncio.run(echo.query(QueryRequest(data=image_uri(8, 8, (0, 0, 0)), render=True), "http"))
    assert drawn.image.startswith("data:image/jpeg;base64,")
    plain = loaded_runner(fixture_entry("plain", "test-cannot-draw"))
    with pytest.raises(InvalidPayload, match="cannot draw"):
        asyncio.run(plain.query(QueryRequest(data=image_uri(), render=True), "http"))
    assert asyncio.run(plain.query(QueryRequest(data=image_uri()), "http")).image is None


@pytest.mark.parametrize("data, error", [
    ("data:image/png;base64,!!!", InvalidPayload),
    ("data:image/png;base64,aGVsbG8gd29ybGQ=", InvalidImage),
    ("data:image/png;base64," + "A" * 2000, PayloadTooLarge),
])
def test_bad_payloads_are_typed_errors_counted_by_status(fixture_families, data, error):
    runner = loaded_runner(fixture_entry("echo", "test-echo", limits={"max_bytes": 1000}))
    with pytest.raises(error):
        asyncio.run(runner.query(QueryRequest(data=data), "socketio"))
    assert runner.metrics.requests_seen == [("socketio", error.status)]
    assert runner.admission.in_flight == 0 and runner.admission.cost_s is None  # bad input teaches no rate


def test_a_family_error_is_counted_500_and_the_runner_keeps_answering(fixture_families):
    runner = loaded_runner(fixture_entry("raises", "test-raises"))
    with pytest.raises(RuntimeError):
        asyncio.run(runner.query(QueryRequest(data=image_uri()), "http"))
    assert runner.metrics.requests_seen == [("http", 500)] and runner.admission.in_flight == 0


def test_the_heap_is_trimmed_once_when_a_burst_is_over_not_after_every_request(fixture_families):
    entry = fixture_entry("slow", "test-slow", options={"delay_s": 0.1},
                          batching={"max_batch_size": 4, "batch_wait_timeout_s": 0.0})
    runner = loaded_runner(entry)
    assert runner.heap.trim is not None, "glibc's malloc_trim is found on Linux"

    async def burst_then_one_more():
        await asyncio.gather(*(runner.query(QueryRequest(data=image_uri()), "http") for _ in range(4)))
        await runner._trimming
        await runner.query(QueryRequest(data=image_uri()), "http")  # within min_interval_s of the trim

    asyncio.run(burst_then_one_more())
    assert runner.heap.trims == 1
    runner.heap.last -= runner.heap.min_interval_s  # as if the interval had passed

    async def another_burst():
        await asyncio.gather(*(runner.query(QueryRequest(data=image_uri()), "http") for _ in range(2)))
        await runner._trimming

    asyncio.run(another_burst())
    assert runner.heap.trims == 2
