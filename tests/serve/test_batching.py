"""The batch queue: size cap, wait for a batch to fill, one batch at a time (or up to `concurrency`), errors to
every caller of a batch, callers that gave up skipped. Plain asyncio, no Ray."""

from __future__ import annotations

import asyncio

import pytest

from serve.batching import BatchQueue


class Recorder:
    """A batch handler that records each batch and answers item * 10, taking `delay_s` per batch."""

    def __init__(self, delay_s: float = 0.0, fail: bool = False):
        self.batches: list[list[int]] = []
        self.delay_s, self.fail = delay_s, fail
        self.running = 0
        self.most_running = 0

    async def __call__(self, items: list[int]) -> list[int]:
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        self.batches.append(list(items))
        try:
            await asyncio.sleep(self.delay_s)
            if self.fail:
                raise RuntimeError(f"batch {items} failed")
            return [item * 10 for item in items]
        finally:
            self.running -= 1


def test_concurrent_items_share_batches_up_to_the_cap_one_batch_at_a_time():
    handler = Recorder(delay_s=0.05)

    async def scenario():
        queue = BatchQueue(handler, max_batch_size=4, wait_s=0.5)
        return await asyncio.gather(*(queue.submit(i) for i in range(10)))

    assert asyncio.run(scenario()) == [i * 10 for i in range(10)]  # each caller gets its own answer
    assert [len(b) for b in handler.batches] == [4, 4, 2]  # the cap fills at once; the rest wait for the wait
    assert sorted(i for b in handler.batches for i in b) == list(range(10))
    assert handler.most_running == 1


def test_a_lone_item_waits_at_most_the_wait_and_zero_wait_means_alone():
    handler = Recorder()

    async def scenario():
        queue = BatchQueue(handler, max_batch_size=8, wait_s=0.2)
        loop = asyncio.get_running_loop()
        start = loop.time()
        assert await queue.submit(1) == 10
        waited = loop.time() - start
        queue.configure(8, 0.0)
        assert await queue.submit(2) == 20
        return waited

    waited = asyncio.run(scenario())
    print(f"a lone item waited {waited * 1000:.0f} ms for a batch of 8 (wait 200 ms)")
    assert waited >= 0.2
    assert handler.batches == [[1], [2]]


def test_a_batch_waits_only_while_items_are_on_their_way():
    """`arriving` (a replica: requests still decoding): none on their way, a lone item runs at once instead of
    waiting out the wait; one on its way, the batch waits for it and takes it."""
    handler = Recorder()
    on_the_way = 0

    async def scenario():
        nonlocal on_the_way
        queue = BatchQueue(handler, max_batch_size=8, wait_s=5.0, arriving=lambda: on_the_way)
        loop = asyncio.get_running_loop()
        start = loop.time()
        assert await queue.submit(1) == 10
        alone_s = loop.time() - start

        async def late_arrival():
            nonlocal on_the_way
            await asyncio.sleep(0.1)
            on_the_way = 0
            return await queue.submit(3)

        on_the_way = 1
        return alone_s, await asyncio.gather(queue.submit(2), late_arrival())

    alone_s, answers = asyncio.run(scenario())
    assert alone_s < 1.0  # not the 5 s wait
    assert answers == [20, 30] and handler.batches == [[1], [2, 3]]


def test_items_arriving_during_a_batch_form_the_next_one():
    handler = Recorder(delay_s=0.2)

    async def scenario():
        queue = BatchQueue(handler, max_batch_size=8, wait_s=0.0)
        first = asyncio.ensure_future(queue.submit(0))
        await asyncio.sleep(0.05)  # the first batch ([0]) is running now
        rest = [asyncio.ensure_future(queue.submit(i)) for i in range(1, 6)]
        return await asyncio.gather(first, *rest)

    assert asyncio.run(scenario()) == [0, 10, 20, 30, 40, 50]
    assert handler.batches == [[0], [1, 2, 3, 4, 5]]


def test_a_failing_batch_fails_each_of_its_callers_and_the_queue_keeps_working():
    handler = Recorder(fail=True)

    async def scenario():
        queue = BatchQueue(handler, max_batch_size=2, wait_s=0.05)
        results = await asyncio.gather(queue.submit(1), queue.submit(2), return_exceptions=True)
        handler.fail = False
        return results, await queue.submit(3)

    results, after = asyncio.run(scenario())
    assert [type(r) for r in results] == [RuntimeError, RuntimeError] and "failed" in str(results[0])
    assert after == 30


def test_a_handler_answering_the_wrong_count_is_an_error_not_a_hang():
    async def short(items):
        return items[:-1]

    async def scenario():
        queue = BatchQueue(short, max_batch_size=2, wait_s=0.05)
        return await asyncio.gather(queue.submit(1), queue.submit(2), return_exceptions=True)

    assert all(isinstance(r, RuntimeError) and "gave 1 results" in str(r) for r in asyncio.run(scenario()))


def test_callers_that_gave_up_are_not_run():
    handler = Recorder(delay_s=0.1)

    async def scenario():
        queue = BatchQueue(handler, max_batch_size=8, wait_s=0.0)
        first = asyncio.ensure_future(queue.submit(0))
        await asyncio.sleep(0.02)
        gone = asyncio.ensure_future(queue.submit(1))
        kept = asyncio.ensure_future(queue.submit(2))
        await asyncio.sleep(0.01)
        gone.cancel()  # e.g. the client disconnected while its request waited
        return await asyncio.gather(first, kept)

    assert asyncio.run(scenario()) == [0, 20]
    assert handler.batches == [[0], [2]]


def test_with_concurrency_2_two_batches_compute_at_once_and_never_more():
    handler = Recorder(delay_s=0.1)

    async def scenario():
        queue = BatchQueue(handler, max_batch_size=2, wait_s=0.0, concurrency=2)
        return await asyncio.gather(*(queue.submit(i) for i in range(8)))

    assert asyncio.run(scenario()) == [i * 10 for i in range(8)]
    assert handler.most_running == 2
    assert all(len(b) <= 2 for b in handler.batches) and sorted(i for b in handler.batches for i in b) == list(range(8))


def test_with_concurrency_2_an_item_arriving_during_a_batch_does_not_wait_for_it():
    handler = Recorder(delay_s=0.3)

    async def scenario():
        queue = BatchQueue(handler, max_batch_size=8, wait_s=0.0, concurrency=2)
        loop = asyncio.get_running_loop()
        first = asyncio.ensure_future(queue.submit(0))
        await asyncio.sleep(0.05)  # the first batch ([0]) is computing
        start = loop.time()
        second = await queue.submit(1)
        return second, loop.time() - start, await first

    second, took, first = asyncio.run(scenario())
    assert (first, second) == (0, 10) and handler.batches == [[0], [1]]
    assert took < 0.3 + 0.2  # its own batch only (0.3 s), not behind the first one (another 0.25 s)


@pytest.mark.parametrize("size, wait", [(0, 0.1), (4, -1.0)])
def test_configure_refuses_impossible_settings(size, wait):
    with pytest.raises(ValueError):
        BatchQueue(Recorder(), size, wait)


def test_concurrency_below_1_is_refused():
    with pytest.raises(ValueError, match="concurrency 0"):
        BatchQueue(Recorder(), 4, 0.0, concurrency=0)
