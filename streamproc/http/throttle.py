"""Per-caller request rates: a token bucket per (key, operation).

Rekognition limits each account to a number of transactions per second per operation and
answers ``ProvisionedThroughputExceededException`` beyond it; SDKs then back off and retry.
streamproc does the same per caller so that one camera loop or misbehaving script cannot
starve the others. Default rates, in the spirit of Rekognition's default quotas:

- 50 requests/s per key and operation for the image and face operations (DetectFaces,
  SearchFacesByImage, IndexFaces, ListFaces, ...), ``default_rate``;
- 5 requests/s for collection management (CreateCollection, DeleteCollection,
  DescribeCollection, ListCollections), :data:`DEFAULT_RATES`.

A bucket holds ``burst`` tokens (default: one second's worth of the rate, at least one) and
refills continuously. Keys are an access key id, a NATS user, or ``""`` for anonymous callers.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from streamproc.errors import ProvisionedThroughputExceededException

__all__ = ["DEFAULT_RATES", "RateLimiter"]

DEFAULT_RATES: Mapping[str, float] = {
    "CreateCollection": 5.0,
    "DeleteCollection": 5.0,
    "DescribeCollection": 5.0,
    "ListCollections": 5.0,
}

# Past this many buckets, full (idle) ones are dropped: a full bucket is the same as a new
# one, so forgetting it changes nothing, and made-up operation names cannot grow memory.
_PRUNE_ABOVE = 4096
_EPSILON = 1e-9


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets per (key, operation); ``acquire`` takes a token or raises.

    ``rates`` overrides :data:`DEFAULT_RATES` per operation (requests per second,
    ``math.inf`` for no limit); other operations get ``default_rate``. Thread-safe.
    """

    def __init__(
        self,
        rates: Mapping[str, float] | None = None,
        default_rate: float = 50.0,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rates = {**DEFAULT_RATES, **(rates or {})}
        self._default_rate = default_rate
        for name, rate in [*self._rates.items(), ("default_rate", default_rate)]:
            if not rate > 0:  # also refuses NaN
                raise ValueError(f"rate for {name} must be > 0 requests per second, not {rate}")
        if burst is not None and not burst >= 1:
            raise ValueError(f"burst must be at least 1 request, not {burst}")
        self._burst = burst
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._prune_at = _PRUNE_ABOVE

    def rate_for(self, operation: str) -> float:
        """Requests per second allowed for an operation, per key."""
        return self._rates.get(operation, self._default_rate)

    def capacity_for(self, operation: str) -> float:
        """How many requests may arrive at once after an idle spell."""
        if self._burst is not None:
            return self._burst
        rate = self.rate_for(operation)
        return max(rate, 1.0)

    def acquire(self, key: str, operation: str) -> None:
        """Take one request's token for ``key`` and ``operation``, or raise.

        Raises ``ProvisionedThroughputExceededException`` when the bucket is empty.
        """
        rate = self.rate_for(operation)
        if math.isinf(rate):
            return
        capacity = self.capacity_for(operation)
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get((key, operation))
            if bucket is None:
                if len(self._buckets) >= self._prune_at:
                    self._prune(now)
                bucket = self._buckets[(key, operation)] = _Bucket(capacity, now)
            else:
                elapsed = max(0.0, now - bucket.updated)
                bucket.tokens = min(capacity, bucket.tokens + elapsed * rate)
                bucket.updated = now
            if bucket.tokens >= 1.0 - _EPSILON:  # float sums such as 0.05 * 20 land just short
                bucket.tokens -= 1.0
                return
        raise ProvisionedThroughputExceededException(
            f"Rate exceeded for {operation}: at most {rate:g} requests per second "
            "per access key. Slow down and retry."
        )

    def _prune(self, now: float) -> None:
        """Forget buckets that have refilled completely (caller holds the lock)."""
        for (key, operation), bucket in list(self._buckets.items()):
            refilled = bucket.tokens + max(0.0, now - bucket.updated) * self.rate_for(operation)
            if refilled >= self.capacity_for(operation):
                del self._buckets[(key, operation)]
        # Amortised: when most buckets are busy, the next pass waits until the count doubles.
        self._prune_at = max(_PRUNE_ABOVE, 2 * len(self._buckets))
