"""Dynamic batching for one model: requests that arrive while the model is busy, or within a short wait of each
other, share one model call.

Ray Serve's `@serve.batch` did this before, but in Ray 2.60 its queue reads the Serve replica context when it is
created (to warn about `max_ongoing_requests`), so a runner built on it could run only inside a Serve replica and
nothing could test it without starting Ray. This queue keeps what the runner used of it: a size cap, a wait for a
batch to fill (`batch_wait_timeout_s`), the cap and wait changeable at run time (`reconfigure`); it runs in any
event loop. Unlike `@serve.batch` it can compute several batches at once (`concurrency`): one batch at a time
leaves all but one core idle when the model runs single-threaded, as it does in a Ray replica.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class BatchQueue(Generic[In, Out]):
    """`handle` gets a list of items and returns one result per item, in order; an exception it raises is every
    caller's. Up to `concurrency` worker tasks each take a batch and await `handle` with it, so that many batches
    compute at once; workers run while items wait and end when the queue is empty, so the queue belongs to no
    particular event loop between bursts."""

    def __init__(self, handle: Callable[[list[In]], Awaitable[list[Out]]], max_batch_size: int, wait_s: float,
                 concurrency: int = 1, arriving: Callable[[], int] | None = None):
        if concurrency < 1:
            raise ValueError(f"concurrency {concurrency} must be >= 1")
        self.handle, self.concurrency = handle, concurrency
        #: How many items are on their way (a replica: requests admitted and still decoding). With none, a
        #: batch does not wait for company that is not coming: at one client the wait was pure latency (2 ms of
        #: the SSD's 20). None: always wait, as `@serve.batch` does.
        self.arriving = arriving
        self.configure(max_batch_size, wait_s)
        self._waiting: deque[tuple[In, asyncio.Future]] = deque()
        self._arrived: asyncio.Event | None = None
        self._workers: list[asyncio.Task] = []
        self._computing: set[asyncio.Task] = set()  # workers awaiting `handle`

    def configure(self, max_batch_size: int, wait_s: float) -> None:
        if max_batch_size < 1 or wait_s < 0:
            raise ValueError(f"max_batch_size {max_batch_size} must be >= 1 and wait_s {wait_s} >= 0")
        self.max_batch_size, self.wait_s = max_batch_size, wait_s

    async def submit(self, item: In) -> Out:
        """Queue one item and wait for its result."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._waiting.append((item, future))
        self._workers = [worker for worker in self._workers if not worker.done()]
        if not self._workers:
            self._arrived = asyncio.Event()
        self._arrived.set()
        self._staff()
        return await future

    def _staff(self) -> None:
        """Start a worker when items wait, every worker there computes (a free one is already filling the next
        batch) and fewer than `concurrency` run."""
        self._workers = [worker for worker in self._workers if not worker.done()]
        busy = all(worker in self._computing for worker in self._workers)
        if busy and len(self._workers) < self.concurrency and self._live():
            self._workers.append(asyncio.get_running_loop().create_task(self._work()))

    async def _work(self) -> None:
        task = asyncio.current_task()
        while self._live():
            await self._fill()
            batch = [self._waiting.popleft() for _ in range(min(self.max_batch_size, len(self._waiting)))]
            batch = [(item, future) for item, future in batch if not future.done()]  # callers gone: skip them
            if batch:
                self._computing.add(task)
                self._staff()  # items left behind this batch: another worker may take them now
                try:
                    await self._run(batch)
                finally:
                    self._computing.discard(task)

    def _live(self) -> int:
        """Drop callers that gave up (cancelled) from the head of the queue; how many still wait."""
        while self._waiting and self._waiting[0][1].done():
            self._waiting.popleft()
        return len(self._waiting)

    async def _fill(self) -> None:
        """Wait up to `wait_s` from now for the batch to reach `max_batch_size`, while items are on their way."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s
        while len(self._waiting) < self.max_batch_size and (remaining := deadline - loop.time()) > 0:
            if self.arriving is not None and self.arriving() == 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                return

    async def _run(self, batch: list[tuple[In, asyncio.Future]]) -> None:
        try:
            results = await self.handle([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"a batch of {len(batch)} gave {len(results)} results")
        except Exception as exc:  # every caller of the batch gets the error; the queue keeps running
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results):
            if not future.done():
                future.set_result(result)
