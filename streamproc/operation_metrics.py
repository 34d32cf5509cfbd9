"""The reference's Rekognition metrics, in Prometheus form, for every front door.

CloudWatch's Rekognition metrics (SuccessfulRequestCount, UserErrorCount,
ServerErrorCount, ThrottledCount, ResponseTime, DetectedFaceCount, DetectedLabelCount)
keep their words and get Prometheus names, labelled by operation. The HTTP API, the NATS
service and per-frame operations all count here, so ``/metrics`` answers "how is
DetectFaces doing" whichever door the requests came through.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from streamproc.errors import (
    ProvisionedThroughputExceededException,
    RekognitionError,
    ThrottlingException,
)
from streamproc.shapes import Shape

__all__ = ["OperationMetrics", "CLOUDWATCH_NAMES"]

RESPONSE_TIME_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0, 10.0)

#: Prometheus metric → the reference's CloudWatch metric (README "Metrics").
CLOUDWATCH_NAMES = {
    "streamproc_successful_request_count_total": "SuccessfulRequestCount",
    "streamproc_user_error_count_total": "UserErrorCount",
    "streamproc_server_error_count_total": "ServerErrorCount",
    "streamproc_throttled_count_total": "ThrottledCount",
    "streamproc_response_time_seconds": "ResponseTime",
    "streamproc_detected_face_count_total": "DetectedFaceCount",
    "streamproc_detected_label_count_total": "DetectedLabelCount",
}

#: Response fields whose length is the detected face / label count (the reference counts
#: faces for DetectFaces and IndexFaces, labels for DetectLabels).
_FACE_FIELDS = ("FaceDetails", "FaceRecords")
_LABEL_FIELDS = ("Labels",)


class OperationMetrics:
    """Counters and a response-time histogram per operation, on the given registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(name: str, doc: str) -> Counter:
            return Counter(name, doc, ["operation"], registry=registry)

        self.successful = counter(
            "streamproc_successful_request_count", "Requests answered successfully"
        )
        self.user_errors = counter(
            "streamproc_user_error_count", "Requests refused as invalid (4xx, not throttling)"
        )
        self.server_errors = counter(
            "streamproc_server_error_count", "Requests that failed inside streamproc (5xx)"
        )
        self.throttled = counter(
            "streamproc_throttled_count", "Requests refused by a rate limit or a full pool"
        )
        self.response_time = Histogram(
            "streamproc_response_time_seconds", "Time to answer a request",
            ["operation"], buckets=RESPONSE_TIME_BUCKETS, registry=registry,
        )
        self.faces = counter("streamproc_detected_face_count", "Faces detected")
        self.labels = counter("streamproc_detected_label_count", "Labels detected")

    def succeeded(self, operation: str, seconds: float, response: Shape | None = None) -> None:
        self.successful.labels(operation).inc()
        self.response_time.labels(operation).observe(seconds)
        if response is not None:
            self.count_detections(operation, response)

    def failed(self, operation: str, error: RekognitionError, seconds: float) -> None:
        if isinstance(error, ThrottlingException | ProvisionedThroughputExceededException):
            self.throttled.labels(operation).inc()
            return
        if error.http_status >= 500:
            self.server_errors.labels(operation).inc()
        else:
            self.user_errors.labels(operation).inc()
        self.response_time.labels(operation).observe(seconds)

    def count_detections(self, operation: str, shape: Shape) -> None:
        for name in _FACE_FIELDS:
            found = getattr(shape, name, None)
            if isinstance(found, list):
                self.faces.labels(operation).inc(len(found))
        for name in _LABEL_FIELDS:
            found = getattr(shape, name, None)
            if isinstance(found, list):
                self.labels.labels(operation).inc(len(found))
