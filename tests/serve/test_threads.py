"""Threads sized from the cores a replica may use: its CPU affinity (and cgroup quota), the catalog's `threads`
section overriding either figure, torch's intra-op threads set where torch runs."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from serve.catalog import CatalogError, Threads
from serve.threads import set_intra_op_threads, usable_cores
from serve.protocols.types import QueryRequest
from tests.helpers.inprocess import fixture_entry, image_uri, loaded_runner


@pytest.fixture
def one_core():
    """This process pinned to one of its cores for the test (what a CPU limit or `taskset` does); torch's
    threads, which a runner loaded meanwhile sets, restored after it."""
    cores, torch = os.sched_getaffinity(0), sys.modules.get("torch")
    torch_threads = torch.get_num_threads() if torch else None
    os.sched_setaffinity(0, {min(cores)})
    yield
    os.sched_setaffinity(0, cores)
    if torch:
        torch.set_num_threads(torch_threads)


def test_usable_cores_follow_the_affinity(one_core):
    assert usable_cores() == 1


def test_unset_threads_take_the_cores_and_set_ones_win():
    assert Threads().resolve(6) == (6, 1)  # as many threads as cores in all
    assert Threads(batches=2).resolve(6) == (2, 3)
    assert Threads(batches=4).resolve(2) == (4, 1)
    assert Threads(batches=3, intra_op=4).resolve(6) == (3, 4)


def test_the_catalog_refuses_zero_threads(fixture_families):
    with pytest.raises(CatalogError, match="threads.batches"):
        fixture_entry("echo", "test-echo", threads={"batches": 0})


def test_a_runner_computes_as_many_batches_at_once_as_its_cores_allow(fixture_families, one_core):
    entry = fixture_entry("slow", "test-slow", options={"delay_s": 0.1})
    assert loaded_runner(entry).batches.concurrency == 1  # one core: one batch at a time


def test_a_model_that_computes_one_batch_at_a_time_caps_the_default_not_a_setting(fixture_families):
    one = {"delay_s": 0.0, "concurrent_batches": 1}  # e.g. one TFLite interpreter
    assert loaded_runner(fixture_entry("slow", "test-slow", options=one,
                                       threads={"intra_op": 1})).batches.concurrency == 1
    assert loaded_runner(fixture_entry("slow", "test-slow", options=one,
                                       threads={"batches": 3, "intra_op": 1})).batches.concurrency == 3


def test_a_request_arriving_during_a_batch_computes_beside_it(fixture_families):
    entry = fixture_entry("slow", "test-slow", options={"delay_s": 0.3}, threads={"batches": 2, "intra_op": 1},
                          batching={"max_batch_size": 4, "batch_wait_timeout_s": 0.0})
    runner = loaded_runner(entry)

    async def two():
        first = asyncio.ensure_future(runner.query(QueryRequest(data=image_uri(), id=0), "http"))
        await asyncio.sleep(0.1)  # the first batch is computing
        return await asyncio.gather(first, runner.query(QueryRequest(data=image_uri(), id=1), "http"))

    first, second = asyncio.run(two())
    assert runner.model.batch_sizes == [1, 1] and first.batch_size == second.batch_size == 1
    assert second.timings.queue_ms < 100  # it did not wait for the first batch's remaining ~200 ms


def test_intra_op_threads_reach_torch():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    try:
        set_intra_op_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
