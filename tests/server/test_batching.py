"""Micro-batching: concurrent requests share predictor calls, lone ones never wait.

Threads stand in for server requests. A long window (60 s) makes the tests
deterministic: a leader only stops waiting early when every announced request has
submitted, so a test that finished at all shows that nobody waited for the window.
Joins carry a deadline against hanging, never a timing expectation.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from pigeonhole.errors import ValidationError
from pigeonhole.server.batching import MicroBatcher

LONG_WINDOW_S = 60.0
DEADLINE_S = 30.0


class Recorder:
    """A predictor call that multiplies by ten and remembers each batch."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.fail_on = fail_on
        self._lock = threading.Lock()

    def __call__(self, items: list[int]) -> list[int]:
        with self._lock:
            self.batches.append(list(items))
        if self.fail_on is not None and self.fail_on in items:
            raise ValueError(f"item {self.fail_on} is corrupt")
        return [item * 10 for item in items]


def run_together(
    batcher: MicroBatcher[int, int],
    requests: list[tuple[Any, list[int]]],
    run: Callable[[list[int]], list[int]],
) -> list[list[int] | BaseException]:
    """Announces every request, then submits them all from their own threads."""
    arrivals = [batcher.expect() for _ in requests]
    outcomes: list[list[int] | BaseException] = [[] for _ in requests]

    def submit(index: int) -> None:
        key, items = requests[index]
        with arrivals[index] as arrival:
            try:
                outcomes[index] = arrival.submit(key, items, run)
            except Exception as error:
                outcomes[index] = error

    threads = [
        threading.Thread(target=submit, args=(index,)) for index in range(len(requests))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE_S)
        assert not thread.is_alive(), "a request never got its answer"
    return outcomes


def test_a_lone_request_does_not_wait_for_the_window() -> None:
    batcher: MicroBatcher[int, int] = MicroBatcher(window_s=LONG_WINDOW_S, max_items=32)
    run = Recorder()

    outcomes = run_together(batcher, [("same", [1, 2])], run)

    assert outcomes == [[10, 20]]
    assert run.batches == [[1, 2]]


def test_announced_requests_share_one_call_and_get_their_own_answers() -> None:
    batcher: MicroBatcher[int, int] = MicroBatcher(window_s=LONG_WINDOW_S, max_items=32)
    run = Recorder()
    requests: list[tuple[Any, list[int]]] = [
        ("same", [index, index + 100]) for index in range(8)
    ]

    outcomes = run_together(batcher, requests, run)

    assert outcomes == [[index * 10, (index + 100) * 10] for index in range(8)]
    assert len(run.batches) == 1 and len(run.batches[0]) == 16
    stats = batcher.counter.snapshot()
    assert (stats.calls, stats.requests, stats.items) == (1, 8, 16)
    assert stats.largest_call == 8


def test_requests_with_other_options_never_share_a_call() -> None:
    batcher: MicroBatcher[int, int] = MicroBatcher(window_s=LONG_WINDOW_S, max_items=32)
    run = Recorder()
    requests: list[tuple[Any, list[int]]] = [
        (("top_k", index % 2), [index]) for index in range(6)
    ]

    outcomes = run_together(batcher, requests, run)

    assert outcomes == [[index * 10] for index in range(6)]
    for batch in run.batches:
        assert len({item % 2 for item in batch}) == 1, run.batches
    assert sorted(item for batch in run.batches for item in batch) == list(range(6))


def test_a_batch_holds_at_most_max_items() -> None:
    batcher: MicroBatcher[int, int] = MicroBatcher(window_s=LONG_WINDOW_S, max_items=4)
    run = Recorder()
    requests: list[tuple[Any, list[int]]] = [("same", [index]) for index in range(10)]

    outcomes = run_together(batcher, requests, run)

    assert outcomes == [[index * 10] for index in range(10)]
    assert max(len(batch) for batch in run.batches) <= 4
    assert len(run.batches) >= 3


def test_a_request_larger_than_max_items_runs_whole() -> None:
    batcher: MicroBatcher[int, int] = MicroBatcher(window_s=LONG_WINDOW_S, max_items=2)
    run = Recorder()

    outcomes = run_together(batcher, [("same", [1, 2, 3, 4, 5])], run)

    assert outcomes == [[10, 20, 30, 40, 50]]


def test_a_failed_call_fails_every_request_it_held() -> None:
    batcher: MicroBatcher[int, int] = MicroBatcher(window_s=LONG_WINDOW_S, max_items=32)
    run = Recorder(fail_on=3)
    requests: list[tuple[Any, list[int]]] = [("same", [index]) for index in range(5)]

    outcomes = run_together(batcher, requests, run)
    after = run_together(batcher, [("same", [7])], run)

    assert all(isinstance(outcome, ValueError) for outcome in outcomes)
    assert "item 3 is corrupt" in str(outcomes[0])
    # The batcher is free again for the next request.
    assert after == [[70]]


def test_a_withdrawn_arrival_is_not_waited_for() -> None:
    batcher: MicroBatcher[int, int] = MicroBatcher(window_s=LONG_WINDOW_S, max_items=32)
    run = Recorder()
    with pytest.raises(ValueError, match="decode failed"), batcher.expect():
        raise ValueError("decode failed")

    outcomes = run_together(batcher, [("same", [4])], run)

    assert outcomes == [[40]]


def test_a_window_of_zero_gives_every_request_its_own_call() -> None:
    batcher: MicroBatcher[int, int] = MicroBatcher(window_s=0, max_items=32)
    run = Recorder()
    requests: list[tuple[Any, list[int]]] = [("same", [index]) for index in range(5)]

    outcomes = run_together(batcher, requests, run)

    assert outcomes == [[index * 10] for index in range(5)]
    assert sorted(run.batches) == [[index] for index in range(5)]
    assert batcher.counter.snapshot().requests_per_call == {1: 5}


def test_an_arrival_submits_once() -> None:
    batcher: MicroBatcher[int, int] = MicroBatcher(window_s=0.01, max_items=32)
    run = Recorder()

    with batcher.expect() as arrival:
        arrival.submit("same", [1], run)
        with pytest.raises(RuntimeError, match="submitted once"):
            arrival.submit("same", [2], run)


@pytest.mark.parametrize(
    ("window_s", "max_items", "message"),
    [(-1.0, 4, "window_s=-1.0 must be 0 or more"), (0.01, 0, "max_items=0")],
    ids=["negative-window", "empty-batch"],
)
def test_bad_settings_are_refused(
    window_s: float, max_items: int, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        MicroBatcher(window_s=window_s, max_items=max_items)
