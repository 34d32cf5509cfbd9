"""The process's metrics over time, for the console's graphs: 24 h at one-minute resolution.

Prometheus keeps only running totals; a graph needs what happened in each minute. A small
asyncio task reads the counters and histograms of :class:`RuntimeMetrics` every few
seconds and adds the difference since the last reading to the current minute of a ring of
1440 minutes. Nothing leaves the process and nothing is written to disk: a restart starts
an empty history (the totals start from zero with the process too).

What is kept per minute: for each operation the reference's metrics (successful requests,
user errors, server errors, throttled, detected faces, detected labels) and the response
time histogram's deltas (mean and p95 of that minute); for each stream the frames analysed
(fps) and the frame latency histogram's deltas (mean and p95). The current minute is
served live: its fps counts the seconds elapsed so far.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from streamproc.operation_metrics import RESPONSE_TIME_BUCKETS
from streamproc.runtime.metrics import LATENCY_BUCKETS, RuntimeMetrics

__all__ = ["MetricsHistory", "OPERATION_COUNTERS", "histogram_quantile"]

log = logging.getLogger(__name__)

MINUTE = 60
DAY_MINUTES = 24 * 60

#: Per-operation counters: series name → OperationMetrics attribute (the reference's words
#: are in :data:`streamproc.operation_metrics.CLOUDWATCH_NAMES`).
OPERATION_COUNTERS = {
    "successful": "successful",
    "user_errors": "user_errors",
    "server_errors": "server_errors",
    "throttled": "throttled",
    "faces": "faces",
    "labels": "labels",
}

#: Each histogram's bucket bounds (as its ``le`` labels, +Inf last).
_BOUNDS = {
    "rt": (*RESPONSE_TIME_BUCKETS, math.inf),
    "latency": (*LATENCY_BUCKETS, math.inf),
}

# A reading's key: (scope "op" or "stream", operation or stream id, field). Histogram fields
# are "<h>:count", "<h>:sum" and "<h>:le=<repr of the bound>" (cumulative, as Prometheus).
Key = tuple[str, str, str]


@dataclass
class _Minute:
    index: int  # minutes since the epoch
    deltas: dict[Key, float] = field(default_factory=dict)


def histogram_quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float | None:
    """The q-quantile from cumulative ``(upper bound, count)`` buckets, as Prometheus's
    ``histogram_quantile`` does: linear within the bucket; in the +Inf bucket, the highest
    finite bound. None without observations."""
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in ordered:
        if count >= rank:
            if math.isinf(upper):
                return lower
            if count == below:
                return upper
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return lower


class MetricsHistory:
    """Per-minute deltas of a :class:`RuntimeMetrics`, kept for ``minutes`` (24 h).

    ``clock`` (epoch seconds) is injectable so tests can move time; :meth:`sample` is the
    whole bookkeeping and may be called at any time (the series calls it to be current).
    """

    def __init__(
        self,
        metrics: RuntimeMetrics,
        *,
        minutes: int = DAY_MINUTES,
        interval: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if minutes < 1:
            raise ValueError("minutes must be at least 1")
        self.metrics = metrics
        self.size = minutes
        self.interval = interval
        self.clock = clock
        self.started_at = clock()
        self._ring: list[_Minute | None] = [None] * minutes
        # The registry starts at zero with the process: the first reading counts in full.
        self._last: dict[Key, float] = {}
        self._online: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    # -- reading the registry -------------------------------------------------------------

    def _read(self) -> dict[Key, float]:
        ops = self.metrics.operations
        reading: dict[Key, float] = {}
        for name, attribute in OPERATION_COUNTERS.items():
            _read_counter(reading, getattr(ops, attribute), "op", name)
        _read_counter(reading, self.metrics.frames, "stream", "frames")
        _read_histogram(reading, ops.response_time, "op", "rt")
        _read_histogram(reading, self.metrics.latency, "stream", "latency")
        self._online = _read_gauge(self.metrics.online)
        return reading

    def sample(self) -> None:
        """Add what the counters gained since the last reading to the current minute."""
        now = self.clock()
        reading = self._read()
        minute = self._minute(int(now // MINUTE))
        last = self._last
        for key, value in reading.items():
            delta = value - last.get(key, 0.0)
            if delta < 0:  # a counter that started again: all of it is new
                delta = value
            if delta:
                minute.deltas[key] = minute.deltas.get(key, 0.0) + delta
        self._last = reading

    def _minute(self, index: int) -> _Minute:
        slot = index % self.size
        found = self._ring[slot]
        if found is None or found.index != index:
            found = _Minute(index)
            self._ring[slot] = found
        return found

    # -- the asyncio task -----------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="metrics-history")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                self.sample()
            except Exception:  # bookkeeping must never take the server down
                log.exception("metrics history: sampling failed")
            await asyncio.sleep(self.interval)

    # -- what the console reads -----------------------------------------------------------

    def series(self, minutes: int = 60) -> dict[str, Any]:
        """The last ``minutes`` minutes (the current one last, live), JSON-ready.

        ``times`` are the minutes' starts (epoch seconds); each value list is aligned with
        them; None where the history did not run yet or nothing was observed (a mean).
        """
        minutes = max(1, min(int(minutes), self.size))
        self.sample()
        now = self.clock()
        current = int(now // MINUTE)
        indexes = range(current - minutes + 1, current + 1)
        first_kept = int(self.started_at // MINUTE)
        rows: list[dict[Key, float] | None] = []
        for index in indexes:
            slot = self._ring[index % self.size]
            if index < first_kept:
                rows.append(None)
            else:
                rows.append(slot.deltas if slot is not None and slot.index == index else {})
        totals = self.totals()
        operations: dict[str, Any] = {}
        for op in sorted(totals["operations"]):
            entry: dict[str, Any] = {
                name: [None if row is None else row.get(("op", op, name), 0.0)
                       for row in rows]
                for name in OPERATION_COUNTERS
            }
            entry["response_time_mean"] = [_mean(row, "op", op, "rt") for row in rows]
            entry["response_time_p95"] = [_p95(row, "op", op, "rt") for row in rows]
            operations[op] = entry
        streams: dict[str, Any] = {}
        for stream in sorted(totals["streams"]):
            frames = [None if row is None else row.get(("stream", stream, "frames"), 0.0)
                      for row in rows]
            streams[stream] = {
                "frames": frames,
                "fps": [self._fps(count, index, now) for count, index in zip(
                    frames, indexes, strict=True)],
                "latency_mean": [_mean(row, "stream", stream, "latency") for row in rows],
                "latency_p95": [_p95(row, "stream", stream, "latency") for row in rows],
            }
        return {
            "now": now,
            "step": MINUTE,
            "minutes": minutes,
            "started_at": self.started_at,
            "times": [index * MINUTE for index in indexes],
            "operations": operations,
            "streams": streams,
            "totals": totals,
        }

    def _fps(self, frames: float | None, index: int, now: float) -> float | None:
        if frames is None:
            return None
        covered = min((index + 1) * MINUTE, now) - max(index * MINUTE, self.started_at)
        if covered <= 0:
            return None
        return frames / max(covered, 1.0)

    def totals(self) -> dict[str, Any]:
        """The running totals since the process started (the tables under the graphs)."""
        reading = self._last
        ops: dict[str, dict[str, Any]] = {}
        streams: dict[str, dict[str, Any]] = {}
        for scope, name, _ in reading:
            if scope == "op":
                ops.setdefault(name, {})
            else:
                streams.setdefault(name, {})
        for name in self._online:
            streams.setdefault(name, {})
        for op, entry in ops.items():
            for counter in OPERATION_COUNTERS:
                entry[counter] = reading.get(("op", op, counter), 0.0)
            entry["requests"] = reading.get(("op", op, "rt:count"), 0.0) + entry["throttled"]
            entry["response_time_mean"] = _mean(reading, "op", op, "rt")
            entry["response_time_p95"] = _p95(reading, "op", op, "rt")
        for stream, entry in streams.items():
            entry["frames"] = reading.get(("stream", stream, "frames"), 0.0)
            entry["latency_mean"] = _mean(reading, "stream", stream, "latency")
            entry["latency_p95"] = _p95(reading, "stream", stream, "latency")
            online = self._online.get(stream)
            entry["online"] = None if online is None else bool(online)
        return {"operations": ops, "streams": streams}


def _read_counter(reading: dict[Key, float], counter: Counter, scope: str, name: str) -> None:
    for family in counter.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                reading[(scope, _label(sample.labels), name)] = float(sample.value)


def _read_histogram(
    reading: dict[Key, float], histogram: Histogram, scope: str, name: str
) -> None:
    for family in histogram.collect():
        for sample in family.samples:
            owner = _label(sample.labels)
            if sample.name.endswith("_bucket"):
                bound = float(sample.labels["le"])
                reading[(scope, owner, f"{name}:le={bound!r}")] = float(sample.value)
            elif sample.name.endswith("_count"):
                reading[(scope, owner, f"{name}:count")] = float(sample.value)
            elif sample.name.endswith("_sum"):
                reading[(scope, owner, f"{name}:sum")] = float(sample.value)


def _read_gauge(gauge: Gauge) -> dict[str, float]:
    found: dict[str, float] = {}
    for family in gauge.collect():
        for sample in family.samples:
            found[_label(sample.labels)] = float(sample.value)
    return found


def _label(labels: dict[str, str]) -> str:
    """The one label our metrics have besides ``le``: the operation or the stream."""
    for key, value in labels.items():
        if key != "le":
            return value
    return ""


def _mean(row: dict[Key, float] | None, scope: str, owner: str, name: str) -> float | None:
    if row is None:
        return None
    count = row.get((scope, owner, f"{name}:count"), 0.0)
    if count <= 0:
        return None
    return row.get((scope, owner, f"{name}:sum"), 0.0) / count


def _p95(row: dict[Key, float] | None, scope: str, owner: str, name: str) -> float | None:
    if row is None:
        return None
    # Buckets without a delta are not stored: zero, yet their bounds matter.
    buckets = [(bound, row.get((scope, owner, f"{name}:le={bound!r}"), 0.0))
               for bound in _BOUNDS[name]]
    return histogram_quantile(0.95, buckets)
