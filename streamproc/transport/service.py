"""The Rekognition request/reply service on NATS (``rekognition.<Operation>``) and its client.

Every operation registered in the :class:`~streamproc.engine.Engine` (built-in or from a
plugin) becomes a ``nats.micro`` endpoint, so ``$SRV.PING`` / ``$SRV.INFO`` / ``$SRV.STATS``
discover it. A request body is the Rekognition request in msgpack or JSON (the
``Content-Type`` header decides, else the body is sniffed); the reply uses the same codec.

Errors travel twice: as the micro error headers (``Nats-Service-Error-Code`` is the HTTP
status, ``Nats-Service-Error`` is ``"<Code>: <Message>"``) for generic NATS tooling, and as a
body ``{"Error": {"Code", "Message", "HTTPStatusCode"}}`` that :class:`RemoteClient` turns back
into the :mod:`streamproc.errors` class.

Engine calls are CPU-bound, so they run in a small thread pool (onnxruntime releases the
GIL). At most ``max_workers + max_queued`` requests are admitted; beyond that the service
answers ``ThrottlingException`` at once instead of queueing without bound.

Payload size: a NATS message is limited by the server's ``max_payload`` (nats-server's
default is 1 MiB), and JSON inflates image bytes by a third. The embedded server is
started with 8 MiB, so a 5 MB image fits in either codec; an external server needs
``max_payload: 8MB`` in its config, else :class:`RemoteClient` refuses a bigger request
with an error naming the server's limit (clients learn it on connect).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

import nats.errors
import nats.micro
from nats.aio.client import Client as NatsClient
from nats.micro.request import ERROR_CODE_HEADER, ERROR_HEADER, Request
from nats.micro.service import EndpointStats, Service

from streamproc import __version__
from streamproc.engine import Engine
from streamproc.errors import (
    ImageTooLargeException,
    InternalServerError,
    InvalidParameterException,
    ProvisionedThroughputExceededException,
    RekognitionError,
    ThrottlingException,
    error_from_name,
)
from streamproc.http.throttle import RateLimiter
from streamproc.operation_metrics import OperationMetrics
from streamproc.shapes import Shape
from streamproc.transport.codec import Codec, CodecError, codec_for, detect_codec

__all__ = [
    "DEFAULT_SUBJECT_PREFIX",
    "RekognitionService",
    "RemoteClient",
    "ServiceUnavailableError",
    "operation_subject",
]

log = logging.getLogger(__name__)

DEFAULT_SUBJECT_PREFIX: Final = "rekognition"
_MAX_HEADER_CHARS: Final = 1024


def operation_subject(operation: str, prefix: str = DEFAULT_SUBJECT_PREFIX) -> str:
    """``"DetectFaces"`` → ``"rekognition.DetectFaces"``."""
    return f"{prefix}.{operation}"


def _header_safe(text: str) -> str:
    """NATS header values end at CR/LF: a multi-line message would corrupt the reply."""
    flat = " ".join(text.split())
    return flat if len(flat) <= _MAX_HEADER_CHARS else flat[: _MAX_HEADER_CHARS - 3] + "..."


@dataclass
class _OperationStats:
    """What micro's own STATS cannot see: our handler returns before the work is done."""

    requests: int = 0
    errors: int = 0
    throttled: int = 0
    processing_ns: int = 0
    last_error: str = ""

    def as_dict(self) -> dict[str, Any]:
        done = self.requests - self.throttled
        mean_ms = self.processing_ns / done / 1e6 if done else 0.0
        return {
            "requests": self.requests,
            "errors": self.errors,
            "throttled": self.throttled,
            "average_processing_ms": round(mean_ms, 3),
            "last_error": self.last_error,
        }


class RekognitionService:
    """Serve an Engine's operations at ``<prefix>.<Operation>`` as a ``nats.micro`` service."""

    def __init__(
        self,
        engine: Engine,
        *,
        name: str = "streamproc-rekognition",
        version: str = __version__,
        description: str = "Amazon Rekognition image API (streamproc)",
        subject_prefix: str = DEFAULT_SUBJECT_PREFIX,
        queue_group: str = "streamproc-rekognition",
        max_workers: int = 2,
        max_queued: int = 8,
        metrics: OperationMetrics | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        if max_queued < 0:
            raise ValueError("max_queued must be >= 0")
        self.engine = engine
        self.name = name
        self.version = version
        self.description = description
        self.subject_prefix = subject_prefix
        self.queue_group = queue_group
        self.max_workers = max_workers
        self.max_queued = max_queued
        self._nc: NatsClient | None = None
        self._service: Service | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._admission: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stats: dict[str, _OperationStats] = {}
        self.metrics = metrics  # the reference's metrics, shared with the other front doors
        #: Requests per second per operation. NATS does not tell a service who sent a
        #: message, so all NATS callers share one bucket per operation (key "").
        self.limiter = limiter

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def service(self) -> Service | None:
        """The running ``nats.micro`` service (None before :meth:`start`)."""
        return self._service

    @property
    def subjects(self) -> dict[str, str]:
        """Operation name → subject, for every operation the engine offers."""
        return {op: operation_subject(op, self.subject_prefix) for op in self.engine.operations}

    @property
    def in_flight(self) -> int:
        """Requests admitted and not yet answered (running or waiting for a worker)."""
        return len(self._tasks)

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per-operation counters (also reported as endpoint ``data`` in ``$SRV.STATS``)."""
        return {op: s.as_dict() for op, s in self._stats.items()}

    async def start(self, nc: NatsClient) -> None:
        """Register the micro service and one endpoint per engine operation on ``nc``."""
        if self._service is not None:
            raise RuntimeError("RekognitionService is already started")
        self._nc = nc
        self._executor = ThreadPoolExecutor(self.max_workers, thread_name_prefix="rekognition")
        self._admission = asyncio.Semaphore(self.max_workers + self.max_queued)
        service = await nats.micro.add_service(
            nc,
            name=self.name,
            version=self.version,
            description=self.description,
            queue_group=self.queue_group,
            metadata={"max_payload": str(nc.max_payload), "workers": str(self.max_workers)},
            stats_handler=self._endpoint_stats,
        )
        for operation, subject in self.subjects.items():
            self._stats[operation] = _OperationStats()
            summary = self.engine.operations[operation].summary
            await service.add_endpoint(
                name=operation,
                subject=subject,
                handler=self._handler(operation),
                metadata={"summary": summary} if summary else None,
            )
        # nats-py's flush() writes its PING straight to the socket, ahead of SUBs still in the
        # pending buffer: only a second round trip proves the endpoints are subscribed.
        await nc.flush()
        await nc.flush()
        self._service = service
        log.info(
            "Rekognition service %s %s on %s.* (%d operations, %d workers)",
            self.name,
            self.version,
            self.subject_prefix,
            len(self._stats),
            self.max_workers,
        )

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop taking requests, let admitted ones finish (up to ``timeout``), free threads."""
        service, self._service = self._service, None
        if service is not None:
            try:
                await service.stop()
            except Exception:  # a closed connection must not keep us from cleaning up
                log.warning("could not unsubscribe the micro service", exc_info=True)
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("cancelled %d unanswered requests at shutdown", len(pending))
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    # -- request handling ---------------------------------------------------------------------

    def _endpoint_stats(self, endpoint: EndpointStats) -> dict[str, Any]:
        stats = self._stats.get(endpoint.name)
        return stats.as_dict() if stats else {}

    def _handler(self, operation: str) -> Any:
        async def handle(request: Request) -> None:
            # nats-py runs a subscription's callback one message at a time, so answering here
            # would serialise all requests of an operation: admit, then work in a task.
            stats = self._stats[operation]
            stats.requests += 1
            if self.limiter is not None:
                try:
                    self.limiter.acquire("", operation)
                except ProvisionedThroughputExceededException as limited:
                    stats.throttled += 1
                    if self.metrics is not None:
                        self.metrics.failed(operation, limited, 0.0)
                    codec = detect_codec(request.data, request.headers)
                    await self._reply_error(request, codec, limited)
                    return
            assert self._admission is not None
            if self._admission.locked():
                stats.throttled += 1
                codec = detect_codec(request.data, request.headers)
                limit = self.max_workers + self.max_queued
                error = ThrottlingException(
                    f"{operation}: {limit} requests are already being processed; retry later"
                )
                if self.metrics is not None:
                    self.metrics.failed(operation, error, 0.0)
                await self._reply_error(request, codec, error)
                return
            await self._admission.acquire()  # never waits: checked above, same event loop
            task = asyncio.create_task(self._serve(request, operation))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        return handle

    async def _serve(self, request: Request, operation: str) -> None:
        stats = self._stats[operation]
        started = time.perf_counter_ns()
        codec = detect_codec(request.data, request.headers)
        try:
            try:
                shape = await self._call(operation, codec, request.data)
                body = codec.encode(shape.to_wire())
                self._check_size(operation, body)
            except RekognitionError as err:
                stats.errors += 1
                stats.last_error = err.code
                if self.metrics is not None:
                    self.metrics.failed(operation, err, (time.perf_counter_ns() - started) / 1e9)
                await self._reply_error(request, codec, err)
                return
            if self.metrics is not None:
                self.metrics.succeeded(operation, (time.perf_counter_ns() - started) / 1e9, shape)
            await request.respond(body, headers={"Content-Type": codec.content_type})
        except Exception:
            log.exception("could not answer %s", request.subject)  # never crash the service
        finally:
            stats.processing_ns += time.perf_counter_ns() - started
            assert self._admission is not None
            self._admission.release()

    def _run(self, operation: str, params: dict[str, Any]) -> Shape:
        return self.engine.run(operation, self.engine.validate(operation, params))

    async def _call(self, operation: str, codec: Codec, data: bytes) -> Shape:
        """Decode and run one request in the pool; every failure becomes a RekognitionError."""
        try:
            params = codec.decode(data) if data.strip() else {}
        except CodecError as exc:
            raise InvalidParameterException(f"{operation}: malformed request body: {exc}") from None
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self._run, operation, params)
        except RekognitionError:
            raise
        except Exception as exc:
            log.exception("%s failed", operation)
            raise InternalServerError(f"{operation} failed: {type(exc).__name__}: {exc}") from exc

    def _check_size(self, operation: str, body: bytes) -> None:
        assert self._nc is not None
        if len(body) > self._nc.max_payload:
            raise InternalServerError(
                f"{operation}: the response is {len(body)} bytes, over the NATS server's "
                f"max_payload of {self._nc.max_payload} bytes"
            )

    async def _reply_error(self, request: Request, codec: Codec, err: RekognitionError) -> None:
        log.debug("%s -> %s: %s", request.subject, err.code, err.message)
        try:
            body = codec.encode({"Error": err.to_dict()})
            await request.respond_error(
                str(err.http_status),
                _header_safe(f"{err.code}: {err.message}"),
                data=body,
                headers={"Content-Type": codec.content_type},
            )
        except Exception:
            log.exception("could not send the error reply to %s", request.subject)


class ServiceUnavailableError(ConnectionError):
    """No streamproc service answers the subject (not running, or not offering the operation)."""


class RemoteClient:
    """Call a remote :class:`RekognitionService`: ``await remote.call("DetectFaces", {...})``.

    Returns the response dict; Rekognition errors raise the same :mod:`streamproc.errors`
    classes as a local :class:`~streamproc.client.Client`. Transport failures raise
    :class:`TimeoutError` or :class:`ServiceUnavailableError`.
    """

    def __init__(
        self,
        nc: NatsClient,
        codec: Codec | str = "msgpack",
        timeout: float = 30.0,
        *,
        subject_prefix: str = DEFAULT_SUBJECT_PREFIX,
    ) -> None:
        self.nc = nc
        self.codec = codec_for(codec)
        self.timeout = timeout
        self.subject_prefix = subject_prefix

    async def call(
        self, operation: str, params: Mapping[str, Any], *, timeout: float | None = None
    ) -> dict[str, Any]:
        """Send one request and wait for its answer."""
        subject = operation_subject(operation, self.subject_prefix)
        payload = self.codec.encode(params)
        limit = self.nc.max_payload
        if len(payload) > limit:
            raise ImageTooLargeException(
                f"{operation}: the {self.codec.name} request is {len(payload)} bytes but the NATS "
                f"server accepts at most {limit} bytes (max_payload). Send a smaller image"
                + (", use msgpack instead of JSON (no base64)" if self.codec.name == "json" else "")
                + ", or raise max_payload in the nats-server config (e.g. 'max_payload: 8MB')."
            )
        wait = self.timeout if timeout is None else timeout
        try:
            msg = await self.nc.request(
                subject,
                payload,
                timeout=wait,
                headers={"Content-Type": self.codec.content_type},
            )
        except nats.errors.NoRespondersError:
            raise ServiceUnavailableError(
                f"no service answers {subject}: is streamproc's NATS service running, "
                f"and does it offer {operation}?"
            ) from None
        except nats.errors.TimeoutError:
            raise TimeoutError(f"{subject}: no answer within {wait} s") from None
        return self._response(msg.data, msg.headers)

    @staticmethod
    def _response(data: bytes, headers: Mapping[str, str] | None) -> dict[str, Any]:
        failed = bool(headers) and ERROR_CODE_HEADER in headers  # type: ignore[operator]
        try:
            body = detect_codec(data, headers).decode(data) if data else {}
        except CodecError as exc:
            if not failed:
                raise InternalServerError(f"undecodable response: {exc}") from None
            body = {}
        error = body.get("Error") if isinstance(body, dict) else None
        if isinstance(error, dict) and "Code" in error:
            raise error_from_name(str(error["Code"]), str(error.get("Message", "")))
        if failed:
            assert headers is not None
            raise InternalServerError(headers.get(ERROR_HEADER, "") or headers[ERROR_CODE_HEADER])
        return body
