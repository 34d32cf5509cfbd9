"""Token buckets per (key, operation), driven by a fake clock."""

from __future__ import annotations

import math
import threading

import pytest

from streamproc.errors import ProvisionedThroughputExceededException
from streamproc.http.throttle import DEFAULT_RATES, RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def take(limiter: RateLimiter, key: str, operation: str, count: int) -> int:
    """How many of ``count`` immediate requests get through."""
    granted = 0
    for _ in range(count):
        try:
            limiter.acquire(key, operation)
        except ProvisionedThroughputExceededException:
            continue
        granted += 1
    return granted


def test_default_rates() -> None:
    limiter = RateLimiter(clock=FakeClock())
    assert limiter.rate_for("DetectFaces") == 50.0
    assert limiter.rate_for("SearchFacesByImage") == 50.0
    assert limiter.rate_for("CreateCollection") == 5.0
    assert limiter.rate_for("DeleteCollection") == 5.0
    assert DEFAULT_RATES["CreateCollection"] == 5.0


def test_burst_then_refill_at_the_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    assert take(limiter, "AKIA1", "DetectFaces", 60) == 50
    clock.now += 0.1  # 5 tokens at 50/s
    assert take(limiter, "AKIA1", "DetectFaces", 10) == 5
    clock.now += 10.0  # refills up to the capacity only
    assert take(limiter, "AKIA1", "DetectFaces", 60) == 50


def test_collection_management_is_slower() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    assert take(limiter, "AKIA1", "CreateCollection", 10) == 5
    clock.now += 0.2  # one token at 5/s
    assert take(limiter, "AKIA1", "CreateCollection", 3) == 1


def test_buckets_are_per_key_and_operation() -> None:
    clock = FakeClock()
    limiter = RateLimiter(default_rate=2.0, clock=clock)
    assert take(limiter, "AKIA1", "DetectFaces", 5) == 2
    assert take(limiter, "AKIA2", "DetectFaces", 5) == 2
    assert take(limiter, "AKIA1", "DetectLabels", 5) == 2
    assert take(limiter, "", "DetectFaces", 5) == 2


def test_error_names_operation_and_rate() -> None:
    limiter = RateLimiter(rates={"DetectFaces": 1.0}, clock=FakeClock())
    limiter.acquire("AKIA1", "DetectFaces")
    with pytest.raises(ProvisionedThroughputExceededException) as info:
        limiter.acquire("AKIA1", "DetectFaces")
    assert "DetectFaces" in info.value.message
    assert "1 requests per second" in info.value.message
    assert info.value.http_status == 400


def test_overrides_burst_and_unlimited() -> None:
    clock = FakeClock()
    limiter = RateLimiter(
        rates={"CreateCollection": 20.0, "ListFaces": math.inf}, burst=3, clock=clock
    )
    assert limiter.rate_for("DeleteCollection") == 5.0  # defaults stay for the others
    assert take(limiter, "k", "CreateCollection", 10) == 3
    clock.now += 0.05  # one token at 20/s
    assert take(limiter, "k", "CreateCollection", 10) == 1
    assert take(limiter, "k", "ListFaces", 1000) == 1000


def test_slow_rate_still_lets_one_request_through() -> None:
    clock = FakeClock()
    limiter = RateLimiter(default_rate=0.5, clock=clock)
    assert take(limiter, "k", "DetectFaces", 3) == 1
    clock.now += 1.0
    assert take(limiter, "k", "DetectFaces", 1) == 0
    clock.now += 1.0
    assert take(limiter, "k", "DetectFaces", 1) == 1


def test_clock_going_backwards_grants_nothing_extra() -> None:
    clock = FakeClock()
    limiter = RateLimiter(default_rate=1.0, clock=clock)
    assert take(limiter, "k", "DetectFaces", 2) == 1
    clock.now -= 100.0
    assert take(limiter, "k", "DetectFaces", 1) == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"default_rate": 0.0},
        {"rates": {"DetectFaces": -1.0}},
        {"burst": 0.5},
        {"default_rate": math.nan},
    ],
)
def test_invalid_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RateLimiter(**kwargs)  # type: ignore[arg-type]


def test_idle_buckets_are_forgotten_when_many() -> None:
    clock = FakeClock()
    limiter = RateLimiter(default_rate=10.0, clock=clock)
    for index in range(4096):
        limiter.acquire(f"key{index}", "DetectFaces")
    assert len(limiter._buckets) == 4096
    clock.now += 1.0  # every bucket refilled: a new one would be the same
    limiter.acquire("late", "DetectFaces")
    assert len(limiter._buckets) == 1
    with pytest.raises(ProvisionedThroughputExceededException):
        for _ in range(10):  # the kept bucket still counts
            limiter.acquire("late", "DetectFaces")


def test_buckets_are_read_and_updated_under_the_lock() -> None:
    """The GIL makes real races rare, so check the critical section directly."""
    held: list[bool] = []

    def clock() -> float:
        held.append(limiter._lock.locked())
        return 1000.0

    limiter = RateLimiter(clock=clock)
    limiter.acquire("k", "DetectFaces")
    limiter.acquire("k", "DetectFaces")
    assert held == [True, True]


def test_concurrent_acquires_grant_exactly_the_capacity() -> None:
    limiter = RateLimiter(default_rate=100.0, clock=FakeClock())
    granted: list[int] = []

    def worker() -> None:
        granted.append(take(limiter, "k", "DetectFaces", 50))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(granted) == 100
