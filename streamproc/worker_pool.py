"""Engine calls in a bounded worker pool with admission control, for request front doors.

Operations are CPU-bound, so they run in threads (onnxruntime releases the GIL). At most
``max_workers + max_queued`` requests are admitted at once; beyond that the answer is
``ThrottlingException`` at once (the reference's 500 form: the service is busy), instead
of a queue that grows without bound. Returns typed shapes: the wire form is made by the
front door.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from streamproc.engine import Engine
from streamproc.errors import InternalServerError, RekognitionError, ThrottlingException
from streamproc.shapes import Shape

__all__ = ["WorkerPool"]

log = logging.getLogger(__name__)


class WorkerPool:
    def __init__(self, engine: Engine, *, max_workers: int = 2, max_queued: int = 8) -> None:
        if max_workers < 1 or max_queued < 0:
            raise ValueError("max_workers must be at least 1 and max_queued at least 0")
        self.engine = engine
        self.max_workers = max_workers
        self.max_queued = max_queued
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix="requests")
        self._admitted = 0

    @property
    def in_flight(self) -> int:
        return self._admitted

    def _run(self, operation: str, params: dict[str, Any]) -> Shape:
        return self.engine.run(operation, self.engine.validate(operation, params))

    async def call(self, operation: str, params: dict[str, Any]) -> Shape:
        """Validate and run one request; every failure is a RekognitionError."""
        limit = self.max_workers + self.max_queued
        if self._admitted >= limit:
            raise ThrottlingException(
                f"{operation}: {limit} requests are already being processed; retry later"
            )
        self._admitted += 1  # on the event loop: no lock needed
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, self._run, operation, params)
        except RekognitionError:
            raise
        except Exception as exc:
            log.exception("%s failed", operation)
            raise InternalServerError(f"{operation} failed: {type(exc).__name__}") from exc
        finally:
            self._admitted -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
