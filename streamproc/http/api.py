"""The Rekognition HTTP API: what unmodified AWS SDKs and the AWS CLI talk to.

Every operation of the registry is reachable at ``POST /`` by its ``X-Amz-Target``, with no
per-operation code. A request goes: body read (limit fits two 5 MB images in base64) →
SigV4 (with an auth file) → JSON decode → IAM-style policy → rate limit per access key and
operation → the bounded worker pool → JSON. Every answer carries an ``x-amzn-RequestId``;
every outcome is counted in the reference's metrics.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from aiohttp import web

from streamproc.engine import Engine
from streamproc.errors import ImageTooLargeException, InternalServerError, RekognitionError
from streamproc.http.protocol import (
    CONTENT_TYPE,
    decode_request,
    encode_error,
    encode_response,
    operation_from_target,
)
from streamproc.operation_metrics import OperationMetrics
from streamproc.worker_pool import WorkerPool

__all__ = ["MAX_BODY_BYTES", "RekognitionHttpApi"]

log = logging.getLogger(__name__)

#: CompareFaces carries two images of up to 5 MB, each a third larger in base64.
MAX_BODY_BYTES = 16 * 1024 * 1024


class RekognitionHttpApi:
    """aiohttp handler for the AWS JSON 1.1 API; ``add_routes`` mounts it at ``POST /``."""

    def __init__(
        self,
        engine: Engine,
        *,
        metrics: OperationMetrics,
        authenticator: Any | None = None,
        limiter: Any | None = None,
        max_workers: int = 2,
        max_queued: int = 8,
    ) -> None:
        self.engine = engine
        self.metrics = metrics
        self.authenticator = authenticator  # streamproc.http.auth.Authenticator, or None
        self.limiter = limiter  # streamproc.http.throttle.RateLimiter, or None
        self.pool = WorkerPool(engine, max_workers=max_workers, max_queued=max_queued)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/", self.handle)

    def close(self) -> None:
        self.pool.close()

    async def _authenticate(self, request: web.Request, body: bytes) -> tuple[str, Any]:
        """The caller's access key and user (``("", None)`` when auth is off)."""
        if self.authenticator is None:
            return "", None
        from streamproc.http.sigv4 import SignedRequest, verify

        path, _, query = request.raw_path.partition("?")
        signed = SignedRequest(
            method=request.method,
            path=path,
            query=query,
            headers=request.headers,
            body=body,
        )
        credential = verify(signed, self.authenticator.secret_for)
        return credential.access_key_id, self.authenticator.user_for_key(credential.access_key_id)

    async def invoke(
        self, operation: str, params: dict[str, Any], *, key: str = "", user: Any | None = None
    ) -> Any:
        """Policy → rate limit → the worker pool, for a caller already authenticated.

        The HTTP API and the console both call operations through here, so both get the
        same answers, limits and permissions (``user`` None: auth is off).
        """
        if user is not None and self.authenticator is not None:
            settings = self.engine.context.settings
            self.authenticator.authorize(
                user, operation, params, settings.region, settings.account_id
            )
        if self.limiter is not None:
            self.limiter.acquire(key, operation)
        return await self.pool.call(operation, params)

    async def handle(self, request: web.Request) -> web.Response:
        request_id = str(uuid.uuid4())
        started = time.perf_counter()
        operation: str | None = None
        try:
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge:
                raise ImageTooLargeException(
                    f"the request body is over {MAX_BODY_BYTES} bytes: images are at most "
                    "5 MB (base64 in JSON)"
                ) from None
            operation = operation_from_target(
                request.headers.get("X-Amz-Target"), self.engine.operations
            )
            key, user = await self._authenticate(request, body)
            params = decode_request(body)
        except RekognitionError as err:
            return self._error(err, operation, request_id, started)
        return await self.answer(operation, params, key=key, user=user,
                                 request_id=request_id, started=started)

    async def answer(
        self,
        operation: str,
        params: dict[str, Any],
        *,
        key: str = "",
        user: Any | None = None,
        request_id: str | None = None,
        started: float | None = None,
    ) -> web.Response:
        """The AWS JSON response (or error) to an authenticated call, counted in the metrics."""
        request_id = request_id or str(uuid.uuid4())
        started = time.perf_counter() if started is None else started
        try:
            response = await self.invoke(operation, params, key=key, user=user)
        except RekognitionError as err:
            return self._error(err, operation, request_id, started)
        except Exception as exc:  # never a bare 500 without the JSON the SDKs parse
            log.exception("HTTP %s failed", operation)
            internal = InternalServerError(f"{operation} failed: {type(exc).__name__}")
            return self._error(internal, operation, request_id, started)
        self.metrics.succeeded(operation, time.perf_counter() - started, response)
        return web.Response(
            body=encode_response(response.to_wire()),
            headers={"Content-Type": CONTENT_TYPE, "x-amzn-RequestId": request_id},
        )

    def _error(
        self, err: RekognitionError, operation: str | None, request_id: str, started: float
    ) -> web.Response:
        if operation is not None:
            self.metrics.failed(operation, err, time.perf_counter() - started)
        log.info("HTTP %s -> %s: %s", operation or "?", err.code, err.message)
        return web.Response(
            status=err.http_status,
            body=encode_error(err),
            headers={
                "Content-Type": CONTENT_TYPE,
                "x-amzn-RequestId": request_id,
                "x-amzn-ErrorType": err.code,
            },
        )
