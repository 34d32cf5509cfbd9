"""The process a deployment runs in: NATS, the request/reply service, HTTP, and the streams."""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web
from nats import errors as nats_errors
from nats.aio.msg import Msg

from streamproc.engine import Engine
from streamproc.history import HistorySink, VisitHistory
from streamproc.http.api import MAX_BODY_BYTES, RekognitionHttpApi
from streamproc.http.server import build_api, check_bind
from streamproc.http.throttle import RateLimiter
from streamproc.http.whip import WhipServer
from streamproc.metrics_history import MetricsHistory
from streamproc.mqtt import MqttBridge
from streamproc.runtime.deployment import Deployment, NatsConfig
from streamproc.runtime.leased import LeasedStreams
from streamproc.runtime.live import LiveStreams
from streamproc.runtime.metrics import RuntimeMetrics
from streamproc.runtime.stream import StreamRunner
from streamproc.settings import Settings
from streamproc.sources import Source, create_source, register_source
from streamproc.sources.registry import source_scheme
from streamproc.transport.codec import detect_codec
from streamproc.transport.nats_server import EmbeddedNatsServer, MqttListener
from streamproc.transport.publisher import Publisher
from streamproc.transport.service import RekognitionService

__all__ = ["NatsUnavailableError", "Runtime", "connect_options"]

#: The first connection must succeed within this time (reconnects later retry forever).
NATS_CONNECT_TIMEOUT = 10.0


class NatsUnavailableError(RuntimeError):
    """The deployment's NATS server cannot be reached (or refused our credentials)."""


log = logging.getLogger(__name__)


def connect_options(nats: NatsConfig) -> dict[str, Any]:
    """nats-py ``connect`` options for the deployment's credentials and TLS."""
    options: dict[str, Any] = {}
    if nats.user is not None:
        options["user"] = nats.user
        options["password"] = nats.password
    if nats.token is not None:
        options["token"] = nats.token
    if nats.credentials_file is not None:
        options["user_credentials"] = str(nats.credentials_file)
    if nats.tls is not None:
        context = ssl.create_default_context(
            cafile=str(nats.tls.ca_file) if nats.tls.ca_file else None
        )
        if nats.tls.cert_file is not None:
            context.load_cert_chain(
                str(nats.tls.cert_file), str(nats.tls.key_file) if nats.tls.key_file else None
            )
        options["tls"] = context
    return options


class Runtime:
    """Starts everything a deployment names, runs its streams, and stops it all cleanly."""

    def __init__(self, deployment: Deployment, *, engine: Engine | None = None) -> None:
        self.deployment = deployment
        settings_args: dict[str, Any] = {}
        if deployment.store is not None:
            settings_args["store"] = deployment.store
        if deployment.threads is not None:
            settings_args["threads"] = deployment.threads
        elif Settings.default("threads") is None and deployment.workers >= (os.cpu_count() or 1):
            # The pool already keeps every core busy: onnxruntime's own threads per run only
            # add hand-offs (measured: 4 busy streams, 8.1 -> 10.1 analysed frames per
            # CPU-second with one intra-op thread; README, Benchmarks).
            settings_args["threads"] = 1
        if deployment.buckets is not None:
            settings_args["buckets"] = deployment.buckets
        self.engine = engine or Engine(Settings(**settings_args))
        self.nats_server: EmbeddedNatsServer | None = None
        self.publisher: Publisher | None = None
        self.service: RekognitionService | None = None
        self.whip: WhipServer | None = None
        self.api: RekognitionHttpApi | None = None
        self.mqtt: MqttBridge | None = None
        self.history: VisitHistory | None = None
        self.history_sink: HistorySink | None = None
        self.mqtt_port: int | None = None
        self.http_runner: web.AppRunner | None = None
        self.http_port: int | None = None
        self.streams: dict[str, StreamRunner] = {}  # with cluster: those running here now
        self.leased: LeasedStreams | None = None  # with cluster: streams run under leases
        self.live: LiveStreams | None = None  # the console's live view
        self.metrics = RuntimeMetrics()
        self.metrics_history: MetricsHistory | None = None  # the console's graphs
        self.cluster: Any | None = None  # streamproc.cluster.node.ClusterNode, with cluster:
        self._executor = ThreadPoolExecutor(deployment.workers, thread_name_prefix="analysis")
        self._stopping = asyncio.Event()
        self._started = False

    @property
    def nats_url(self) -> str:
        if self.nats_server is not None:
            return self.nats_server.url
        urls = self.deployment.nats.url
        return urls[0] if isinstance(urls, list) else urls

    async def _start_nats(self) -> list[str]:
        nats = self.deployment.nats
        if nats.url == "embedded":
            mqtt = self.deployment.mqtt
            listener = None
            if mqtt is not None:
                listener = MqttListener(
                    host=mqtt.host,
                    port=mqtt.port,
                    username=mqtt.user,
                    password=mqtt.password.get_secret_value() if mqtt.password else None,
                    token=mqtt.token.get_secret_value() if mqtt.token else None,
                )
            # With MQTT, JetStream keeps the retained messages (Home Assistant discovery,
            # last states): keep them with the store so they survive a restart, and so the
            # entities of streams removed meanwhile can be found and cleared.
            store_dir = self.engine.context.settings.store / "nats" if listener else None
            self.nats_server = EmbeddedNatsServer(
                jetstream=True, mqtt=listener, store_dir=store_dir
            )
            url = await self.nats_server.start_async()
            log.info("embedded nats-server %s at %s", self.nats_server.version, url)
            return [url]
        assert isinstance(nats.url, list)
        return list(nats.url)

    async def _start_mqtt(self) -> None:
        """The MQTT side: the embedded server's listener, or an external server's."""
        mqtt = self.deployment.mqtt
        assert mqtt is not None
        port = mqtt.port
        if self.nats_server is not None and self.nats_server.mqtt_port is not None:
            port = self.nats_server.mqtt_port
        password = mqtt.password or mqtt.token
        self.mqtt = MqttBridge(
            mqtt.host,
            port,
            [s.id for s in self.deployment.streams],
            user=mqtt.user if mqtt.user is not None else ("token" if mqtt.token else None),
            password=password.get_secret_value() if password is not None else None,
            prefix=mqtt.topic_prefix,
            discovery=mqtt.discovery,
            discovery_prefix=mqtt.discovery_prefix,
        )
        await self.mqtt.start()
        self.mqtt_port = port

    def _source_for(self, index: int) -> tuple[Source, str]:
        stream = self.deployment.streams[index]
        if stream.whip is not None:
            assert self.whip is not None
            return self.whip.source_factory(stream.id, token=stream.whip.token), "whip"
        # With a substream (detect_url) only the substream is opened: decoding, motion,
        # analysis and snapshots all use it, and the main url is not used (yet).
        url = stream.analysed_url
        assert url is not None
        if stream.detect_url is not None:
            log.info("%s: analysing the substream (detect_url); the main url is not opened",
                     stream.id)
        options: dict[str, Any] = {}
        if source_scheme(url) == "file":
            options = {"loop": stream.loop, "realtime": stream.realtime}
        return create_source(stream.id, url, **options), url

    async def start(self) -> None:
        """Start NATS, the service, HTTP and the streams; a failure closes what started."""
        self._started = True
        try:
            await self._start()
        except BaseException:
            log.error("start-up failed: closing what had started")
            await self.close()
            raise

    async def _start(self) -> None:
        hook = self.engine.plugin_manager.hook
        hook.streamproc_register_sources(
            register=lambda scheme, factory: register_source(scheme, factory, replace=False)
        )
        servers = await self._start_nats()
        nats = self.deployment.nats
        self.publisher = Publisher(
            servers,
            codec=self.deployment.encoding,
            stream=nats.jetstream.stream if nats.jetstream else None,
            stream_max_age=nats.jetstream.max_age_s if nats.jetstream else None,
            stream_max_bytes=nats.jetstream.max_bytes if nats.jetstream else None,
            connect_options=connect_options(nats) if nats.url != "embedded" else None,
        )
        try:
            # nats-py retries a refused first connection forever: give up with a clear error.
            await asyncio.wait_for(self.publisher.connect(), NATS_CONNECT_TIMEOUT)
        except (TimeoutError, OSError, nats_errors.Error) as exc:
            reason = self.publisher.last_error or exc
            raise NatsUnavailableError(
                f"cannot connect to NATS at {', '.join(servers)}: {reason!r}"
            ) from exc
        if self.deployment.cluster is not None:
            await self._start_cluster()
        if self.deployment.mqtt is not None:
            await self._start_mqtt()
        history = self.deployment.history
        if history.enabled and self.deployment.streams:
            self.history = VisitHistory(
                self.engine.context.settings.store / "history",
                retention_days=history.retention_days,
                max_bytes=int(history.max_mb * 1024 * 1024),
            )
            self.history_sink = HistorySink(self.history)
        if self.deployment.service:
            self.service = RekognitionService(
                self.engine, max_workers=self.deployment.workers, metrics=self.metrics.operations,
                limiter=RateLimiter(),
            )
            await self.service.start(self.publisher.nc)
        needs_whip = any(s.whip is not None for s in self.deployment.streams)
        http = self.deployment.http
        if needs_whip or http.enabled:
            if http.enabled and http.api:  # WHIP alone is guarded by its stream tokens
                check_bind(http.host, auth=http.auth is not None, insecure=http.insecure)
            app = web.Application(client_max_size=MAX_BODY_BYTES)
            self.metrics.add_routes(app)
            if http.enabled and http.api:
                self.api = build_api(
                    self.engine, self.metrics, auth_file=http.auth,
                    max_workers=self.deployment.workers,
                )
                self.api.add_routes(app)
                if http.console:
                    from streamproc.console import Console

                    self.live = LiveStreams([s.id for s in self.deployment.streams])
                    self.metrics_history = MetricsHistory(self.metrics)
                    await self.metrics_history.start()
                    Console(self.api, history=self.history, metrics_history=self.metrics_history,
                            live=self.live, searches=self._search_collections(),
                            thumbnails=http.thumbnails).add_routes(app)
            if needs_whip:
                self.whip = WhipServer()
                self.whip.add_routes(app)
            self.http_runner = web.AppRunner(app)
            await self.http_runner.setup()
            site = web.TCPSite(
                self.http_runner, self.deployment.http.host, self.deployment.http.port
            )
            await site.start()
            addresses = self.http_runner.addresses
            self.http_port = int(addresses[0][1]) if addresses else self.deployment.http.port
            log.info(
                "HTTP on http://%s:%s: %s/metrics%s",
                self.deployment.http.host,
                self.http_port,
                ("the Rekognition API at POST /, "
                 + ("the console at /console/, " if self.live is not None else ""))
                if self.api is not None else "",
                ", /whip/<stream>" if needs_whip else "",
            )
        cluster = self.deployment.cluster
        if cluster is not None:  # each stream runs where its lease is held (run() acquires)
            pushed = [s for s in self.deployment.streams if s.whip is not None]
            self.leased = LeasedStreams(
                self.publisher.nc, cluster, [s.id for s in self.deployment.streams],
                self._runner, self.streams, on_demand=[s.id for s in pushed],
                on_holder=self.live.on_remote_holder if self.live is not None else None,
            )
            await self.leased.ensure()
            if self.live is not None:  # the console shows cameras other nodes run
                await self.publisher.nc.subscribe("streamproc.*.status",
                                                  cb=self._remote_status)
            if self.whip is not None:  # a WHIP stream starts on the node its camera POSTs to
                for stream in pushed:
                    assert stream.whip is not None
                    self.whip.expect(stream.id, stream.whip.token)
                self.whip.claim = self.leased.claim
        else:
            for stream in self.deployment.streams:
                self.streams[stream.id] = self._runner(stream.id)

    async def _remote_status(self, msg: Msg) -> None:
        """A status message of a stream another node of the cluster runs: the console's."""
        cluster, live, leased = self.deployment.cluster, self.live, self.leased
        if cluster is None or live is None or leased is None:
            return
        try:
            payload = detect_codec(msg.data, msg.headers).decode(msg.data)
            node, stream_id = payload.get("Node"), payload.get("StreamName")
            status, reason = str(payload.get("Status", "")), payload.get("Reason")
        except Exception:  # not a status message of ours: nothing to show
            return
        if not isinstance(node, str) or node == cluster.node or stream_id in leased.tasks:
            return
        live.on_remote_status(str(stream_id), node, status,
                              reason if isinstance(reason, str) else None)

    def _runner(self, stream_id: str, fence: Callable[[], bool] | None = None) -> StreamRunner:
        i = next(i for i, s in enumerate(self.deployment.streams) if s.id == stream_id)
        stream = self.deployment.streams[i]
        source, label = self._source_for(i)
        assert self.publisher is not None
        runner = StreamRunner(
            stream,
            source,
            engine=self.engine,
            publisher=self.publisher,
            executor=self._executor,
            source_label=label,
            metrics=self.metrics,
            sinks=[s for s in (self.mqtt, self.history_sink, self.live) if s is not None],
            tap=self.live.tap if self.live is not None else None,
            node=self.deployment.cluster.node if self.deployment.cluster else None,
            fence=fence,
        )
        if self.live is not None:
            self.live.attach(stream.id, runner.stats)
        return runner

    async def _start_cluster(self) -> None:
        """Replicated collections (README, Scaling out): before any front door opens, so
        every one of them writes through the collection log and reads this node's replica."""
        from streamproc.cluster.node import ClusterNode, NodeSettings

        cluster = self.deployment.cluster
        assert cluster is not None and self.publisher is not None
        self.cluster = ClusterNode(
            self.engine,
            NodeSettings(node=cluster.node, replicas=cluster.replicas,
                         log_stream=cluster.log_stream, read_wait_s=cluster.read_wait_s,
                         snapshot_records=cluster.snapshot_records,
                         compact_check_s=cluster.compact_check_s),
            self.publisher.nc,
        )
        await self.cluster.start()

    def _search_collections(self) -> dict[str, list[str]]:
        """Each stream's search collections (where the console indexes a visitor it names)."""
        found: dict[str, list[str]] = {}
        for stream in self.deployment.streams:
            ids = [str(op.params["CollectionId"]) for op in stream.operations
                   if op.operation == "SearchFacesByImage" and "CollectionId" in op.params]
            found[stream.id] = list(dict.fromkeys(ids))
        return found

    async def run(self, *, until_done: bool = False, close: bool = True) -> None:
        """Run every stream; return on :meth:`stop`, or once all streams ended if asked.

        ``close=False`` leaves NATS and HTTP up once the streams ended (a caller draining
        its own subscriber first); that caller then calls :meth:`close`.
        """
        if not self._started:  # a caller may start first (to subscribe before frames flow)
            await self.start()  # closes everything it started if it fails
        if self.leased is not None:  # cluster: streams start and stop with their leases
            await self.leased.start()
            until_done = False  # another node may run a stream this one ended
        tasks = [  # with cluster: none here, LeasedStreams runs each stream while leased
            asyncio.create_task(s.run(), name=f"stream:{sid}") for sid, s in self.streams.items()
        ] if self.leased is None else []
        stop = asyncio.create_task(self._stopping.wait())
        try:
            if until_done and tasks:
                streams_done: asyncio.Future[Any] = asyncio.ensure_future(
                    asyncio.gather(*tasks, return_exceptions=True)
                )
                await asyncio.wait([stop, streams_done], return_when=asyncio.FIRST_COMPLETED)
            else:
                await stop
        finally:
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            for task, result in zip(tasks, results, strict=True):
                if isinstance(result, Exception):  # logged with its traceback by the stream
                    log.error("%s ended with %s: %s", task.get_name(), type(result).__name__,
                              result)
            stop.cancel()
            if close:
                await self.close()

    def stop(self) -> None:
        self._stopping.set()

    async def close(self) -> None:
        """Stop what was started (safe to call twice, and after a partial start)."""
        leased, self.leased = self.leased, None
        if leased is not None:  # first: the other nodes take these streams at once
            await leased.close()
        metrics_history, self.metrics_history = self.metrics_history, None
        if metrics_history is not None:
            await metrics_history.stop()
        if self.live is not None:
            self.live.close()  # open live views end, so the server's shutdown does not wait
        runner, self.http_runner = self.http_runner, None
        if runner is not None:
            await runner.cleanup()
        service, self.service = self.service, None
        if service is not None:
            await service.stop()
        api, self.api = self.api, None
        if api is not None:
            api.close()
        for stream in self.streams.values():
            await stream.source.close()
        cluster, self.cluster = self.cluster, None
        if cluster is not None:
            await cluster.stop()
        sink, self.history_sink = self.history_sink, None
        if sink is not None:
            await asyncio.to_thread(sink.close)  # writes what is queued
        history, self.history = self.history, None
        if history is not None:
            await asyncio.to_thread(history.close)
        bridge, self.mqtt = self.mqtt, None
        if bridge is not None:
            await bridge.stop()
        publisher, self.publisher = self.publisher, None
        if publisher is not None:
            await publisher.close()
        server, self.nats_server = self.nats_server, None
        if server is not None:
            server.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)
