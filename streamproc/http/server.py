"""``streamproc serve``: the Rekognition HTTP API (and ``/metrics``) on one address.

Secure by default: without an auth file the server accepts any signature, so it binds
only a loopback address unless told ``insecure``; with one, every request must be signed
by a known access key and allowed by that user's policy.
"""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path
from typing import Any

from aiohttp import web

from streamproc.engine import Engine
from streamproc.http.api import MAX_BODY_BYTES, RekognitionHttpApi
from streamproc.metrics_history import MetricsHistory
from streamproc.runtime.metrics import RuntimeMetrics

__all__ = ["ApiServer", "InsecureBindError", "is_loopback"]

log = logging.getLogger(__name__)


class InsecureBindError(ValueError):
    """A non-loopback address without an auth file, and no explicit ``insecure``."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, *, auth: bool, insecure: bool) -> None:
    if not auth and not insecure and not is_loopback(host):
        raise InsecureBindError(
            f"refusing to serve on {host} without --auth: anyone who can reach it could "
            "use and change your collections. Give --auth FILE, bind 127.0.0.1, or pass "
            "--insecure if this network is trusted."
        )


def build_api(
    engine: Engine,
    metrics: RuntimeMetrics,
    *,
    auth_file: Path | None = None,
    rates: dict[str, float] | None = None,
    max_workers: int = 2,
    max_queued: int = 8,
) -> RekognitionHttpApi:
    """The API with its authenticator and rate limiter, as configured."""
    from streamproc.http.throttle import RateLimiter

    authenticator = None
    if auth_file is not None:
        from streamproc.http.auth import Authenticator, load_auth_file

        authenticator = Authenticator(load_auth_file(auth_file))
    return RekognitionHttpApi(
        engine,
        metrics=metrics.operations,
        authenticator=authenticator,
        limiter=RateLimiter(rates),
        max_workers=max_workers,
        max_queued=max_queued,
    )


class ApiServer:
    """Runs the API on ``host:port`` (port 0: a free one) until :meth:`stop`."""

    def __init__(
        self,
        engine: Engine,
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        auth_file: Path | None = None,
        insecure: bool = False,
        max_workers: int = 2,
        max_queued: int = 8,
        console: bool = True,
        thumbnails: bool = True,
    ) -> None:
        check_bind(host, auth=auth_file is not None, insecure=insecure)
        self.engine = engine
        self.host = host
        self.port = port
        self.metrics = RuntimeMetrics()
        self.api = build_api(engine, self.metrics, auth_file=auth_file,
                             max_workers=max_workers, max_queued=max_queued)
        self._runner: web.AppRunner | None = None
        self.console_enabled = console
        self.thumbnails = thumbnails
        self.history: Any | None = None  # the visit history of a store `run` wrote, if any
        # The console's metrics graphs: per-minute history of self.metrics, in this process.
        self.metrics_history: MetricsHistory | None = (
            MetricsHistory(self.metrics) if console else None
        )

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        self.api.add_routes(app)
        self.metrics.add_routes(app)
        if self.console_enabled:
            from streamproc.console import Console

            Console(self.api, history=self.history, metrics_history=self.metrics_history,
                    thumbnails=self.thumbnails).add_routes(app)
        return app

    async def start(self) -> str:
        history_dir = self.engine.context.settings.store / "history"
        if self.console_enabled and history_dir.is_dir():
            # `streamproc run` kept visits in this store: the console shows and names them.
            import asyncio

            from streamproc.history import VisitHistory

            self.history = await asyncio.to_thread(VisitHistory, history_dir)
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        if self.metrics_history is not None:
            await self.metrics_history.start()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        addresses: list[Any] = list(self._runner.addresses)
        if addresses:
            self.port = int(addresses[0][1])
        auth = "SigV4 with the auth file" if self.api.authenticator else "no auth (loopback)"
        log.info("Rekognition API at %s (%s)%s", self.url, auth,
                 f"; console at {self.url}/console/" if self.console_enabled else "")
        return self.url

    async def stop(self) -> None:
        if self.metrics_history is not None:
            await self.metrics_history.stop()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        self.api.close()
        history, self.history = self.history, None
        if history is not None:
            history.close()
