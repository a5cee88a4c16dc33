"""Micro-batching: concurrent requests for one model share one predictor call.

A server thread per request would otherwise call the model on its own, and
concurrent calls compete for the same cores while each pays the per-call cost of
the graph. A `MicroBatcher` (one per loaded model) coalesces them instead:

1. A request first *announces* itself (`MicroBatcher.expect`), then decodes its
   images on its own thread, so a corrupt image fails that request alone, before
   any batch is formed.
2. It then *submits* the decoded images and waits. When no batch of the model is
   running, the oldest waiting request becomes the leader: it takes every waiting
   request with the same options, up to ``max_items`` images, runs them as one
   predictor call on its own thread, and hands each request its own slice.
3. Requests that arrive while a batch runs queue up and form the next batch, so
   under load the batch size grows with the load and calls never overlap.

The window is how long a leader may wait for requests that have announced
themselves but are still decoding, counted from the leader's own arrival. A lone
request has nobody announced behind it and runs at once: no wait at concurrency 1.
Under load the leader waits only for requests known to be on their way, never for
an empty window, and a request already queued behind a running batch is usually
older than the window, so it starts as soon as the model is free. This beats both
"always wait the window" (adds the window to every lone request) and "never wait"
(the first request after an idle gap runs alone while the others finish decoding).

Waiting is on one `threading.Condition`; nothing polls. A window of 0 turns
batching off: every request calls the predictor itself, as without this module.

Example:
    >>> batcher = MicroBatcher(window_s=0.005, max_items=32)
    >>> with batcher.expect() as arrival:
    ...     arrival.submit("options", [1, 2], lambda items: [x * 10 for x in items])
    [10, 20]
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Generic, TypeVar

from pigeonhole.errors import ValidationError

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

Run = Callable[[list[T]], list[R]]
"""One predictor call: items in, one result per item, in order."""


@dataclass(frozen=True)
class BatchStats:
    """How requests were grouped into predictor calls.

    Attributes:
        calls: Predictor calls made.
        requests: Requests those calls answered.
        items: Images those calls predicted.
        requests_per_call: How many calls answered 1, 2, ... requests.
    """

    calls: int = 0
    requests: int = 0
    items: int = 0
    requests_per_call: dict[int, int] = field(default_factory=dict)

    @property
    def largest_call(self) -> int:
        """Requests in the call that answered the most of them (0: no call)."""
        return max(self.requests_per_call, default=0)


class CallCounter:
    """Counts predictor calls and their sizes; safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls = 0
        self._requests = 0
        self._items = 0
        self._sizes: Counter[int] = Counter()

    def record(self, requests: int, items: int) -> None:
        """Counts one call that answered ``requests`` requests of ``items`` images."""
        with self._lock:
            self._calls += 1
            self._requests += requests
            self._items += items
            self._sizes[requests] += 1

    def snapshot(self) -> BatchStats:
        """The counts so far."""
        with self._lock:
            return BatchStats(
                self._calls,
                self._requests,
                self._items,
                dict(sorted(self._sizes.items())),
            )


@dataclass(eq=False)
class _Job(Generic[T, R]):
    key: Hashable
    items: list[T]
    run: Run[T, R]
    arrived: float
    results: list[R] | None = None
    error: BaseException | None = None
    done: bool = False

    def outcome(self) -> list[R]:
        if self.error is not None:
            raise self.error
        if self.results is None:  # only if the leader's thread died mid-call
            raise RuntimeError("the batch holding this request ended without results")
        return self.results


class Arrival(Generic[T, R]):
    """A request announced to a batcher; submit it once, or leave it unsubmitted.

    Leaving the ``with`` block without submitting (say, a decode error) withdraws
    the announcement, so no leader waits for it.
    """

    def __init__(self, batcher: MicroBatcher[T, R]) -> None:
        self._batcher = batcher
        self._open = True

    def __enter__(self) -> Arrival[T, R]:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._open:
            self._open = False
            self._batcher._withdraw()

    def submit(self, key: Hashable, items: list[T], run: Run[T, R]) -> list[R]:
        """Predicts ``items``, batched with other requests of the same ``key``.

        Args:
            key: The request's options; only requests with equal keys share a call.
            items: The request's decoded images.
            run: The predictor call for a list of items; the leader calls its own,
                so every request of one key must pass an equivalent one.

        Returns:
            One result per item, in order.

        Raises:
            Exception: Whatever ``run`` raised for the batch holding this request.
        """
        if not self._open:
            raise RuntimeError("an arrival is submitted once")
        self._open = False
        return self._batcher._submit(_Job(key, items, run, time.monotonic()))


def check_batching(window_s: float, max_items: int) -> None:
    """Checks a batching window and size.

    Raises:
        ValidationError: A negative window or ``max_items`` below 1.
    """
    if window_s < 0:
        raise ValidationError(f"window_s={window_s} must be 0 or more")
    if max_items < 1:
        raise ValidationError(f"max_items={max_items} must be at least 1")


class MicroBatcher(Generic[T, R]):
    """Coalesces concurrent requests into shared calls; see the module docstring.

    Args:
        window_s: How long a leader waits for announced requests, in seconds;
            0 turns batching off.
        max_items: Most items in one call; a single larger request still runs
            whole, alone.
        counter: Where calls are counted; a new one when None.

    Raises:
        ValidationError: A negative window or ``max_items`` below 1.
    """

    def __init__(
        self, *, window_s: float, max_items: int, counter: CallCounter | None = None
    ) -> None:
        check_batching(window_s, max_items)
        self.window_s = window_s
        self.max_items = max_items
        self.counter = counter or CallCounter()
        self._cond = threading.Condition()
        self._queue: deque[_Job[T, R]] = deque()
        self._coming = 0
        self._busy = False

    @property
    def enabled(self) -> bool:
        """Whether requests are coalesced (a window above 0)."""
        return self.window_s > 0

    @property
    def waiting(self) -> int:
        """Requests submitted and not yet taken into a call."""
        with self._cond:
            return len(self._queue)

    def expect(self) -> Arrival[T, R]:
        """Announces a request that will submit soon (once its images are decoded)."""
        with self._cond:
            self._coming += 1
        return Arrival(self)

    def _withdraw(self) -> None:
        with self._cond:
            self._coming -= 1
            self._cond.notify_all()

    def _submit(self, job: _Job[T, R]) -> list[R]:
        if not self.enabled:
            self._withdraw()
            self.counter.record(1, len(job.items))
            return job.run(job.items)
        with self._cond:
            self._coming -= 1
            self._queue.append(job)
            self._cond.notify_all()
            while not job.done:
                if not self._busy and self._queue[0] is job:
                    batch = self._gather(job)
                    break
                self._cond.wait()
            else:
                return job.outcome()
        self._run(batch)
        return job.outcome()

    def _gather(self, leader: _Job[T, R]) -> list[_Job[T, R]]:
        """Waits (lock held) for announced requests, then takes the batch."""
        self._busy = True
        deadline = leader.arrived + self.window_s
        while self._coming > 0 and self._waiting_items(leader.key) < self.max_items:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._cond.wait(remaining)
        batch: list[_Job[T, R]] = []
        size = 0
        for job in list(self._queue):
            if job.key != leader.key:
                continue
            if batch and size + len(job.items) > self.max_items:
                break
            batch.append(job)
            size += len(job.items)
        for job in batch:
            self._queue.remove(job)
        return batch

    def _waiting_items(self, key: Hashable) -> int:
        return sum(len(job.items) for job in self._queue if job.key == key)

    def _run(self, batch: list[_Job[T, R]]) -> None:
        """Runs one call for ``batch`` (lock not held) and hands out the results."""
        items = [item for job in batch for item in job.items]
        self.counter.record(len(batch), len(items))
        results: list[R] | None = None
        error: BaseException | None = None
        try:
            results = batch[0].run(items)
        except BaseException as raised:  # every request of the batch gets it
            error = raised
        with self._cond:
            start = 0
            for job in batch:
                if results is not None:
                    job.results = results[start : start + len(job.items)]
                    start += len(job.items)
                job.error = error
                job.done = True
            self._busy = False
            self._cond.notify_all()
        logger.debug(
            "predicted %d images of %d requests in one call", len(items), len(batch)
        )
