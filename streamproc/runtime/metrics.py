"""Prometheus metrics of the running streams, served at ``/metrics`` on the HTTP endpoint."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from streamproc.operation_metrics import OperationMetrics

__all__ = ["RuntimeMetrics"]

LATENCY_BUCKETS = (0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0)


class RuntimeMetrics:
    """One registry per runtime (not the global one), so tests and embedders stay isolated."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        #: The reference's request metrics, for every front door of this process.
        self.operations = OperationMetrics(self.registry)
        self.frames = Counter(
            "streamproc_frames_analysed", "Frames analysed and published", ["stream"],
            registry=self.registry,
        )
        self.skipped = Gauge(
            "streamproc_frames_skipped", "Frames skipped (fps budget and latest-frame slot)",
            ["stream"], registry=self.registry,
        )
        self.events = Counter(
            "streamproc_visitor_events", "Events published (visitor and label events)",
            ["stream", "type"], registry=self.registry,
        )
        self.frame_errors = Counter(
            "streamproc_frame_errors",
            "Operations or observers that raised on an analysed frame (the stream went on)",
            ["stream", "stage"], registry=self.registry,
        )
        self.online = Gauge(
            "streamproc_stream_online", "1 while the source delivers frames", ["stream"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "streamproc_frame_latency_seconds", "Frame capture to record published", ["stream"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.analysis = Histogram(
            "streamproc_analysis_seconds", "Time the operations took per analysed frame",
            ["stream"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )

    async def handle(self, request: web.Request) -> web.Response:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/metrics", self.handle)
