"""The MQTT side of a deployment: retained state, a last will and discovery, per stream.

Messages published on NATS reach MQTT subscribers live but are never retained, and a last
will needs an MQTT session; Home Assistant needs both. So streamproc keeps one MQTT client
connection (paho-mqtt, its network loop in its own thread) to the server's MQTT listener
and publishes the stream state through it. It is an :class:`EventSink`: the runner hands
it typed events, and JSON is made here, at the edge.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from streamproc.mqtt.discovery import discovery_messages, stream_of_node
from streamproc.mqtt.topics import StreamTopics, available_topic
from streamproc.runtime.events import VisitorArrived, VisitorIdentified, VisitorLeft
from streamproc.shapes import Shape

__all__ = ["MqttBridge", "MqttUnavailableError"]

log = logging.getLogger(__name__)

#: How long retained discovery configs may take to arrive after subscribing at start.
RETAINED_WAIT_S = 0.5


class MqttUnavailableError(ConnectionError):
    """The MQTT listener cannot be reached, or refused our credentials."""


def _json(event: Shape) -> bytes:
    """An event as JSON for MQTT tools; snapshots travel on their own topic, not base64."""
    wire = {k: v for k, v in event.to_wire().items() if not isinstance(v, bytes)}
    return json.dumps(wire, default=str, separators=(",", ":")).encode()


class MqttBridge:
    """Publishes each stream's visitor state for MQTT subscribers and Home Assistant."""

    def __init__(
        self,
        host: str,
        port: int,
        streams: Iterable[str],
        *,
        user: str | None = None,
        password: str | None = None,
        prefix: str = "streamproc",
        discovery: bool = True,
        discovery_prefix: str = "homeassistant",
    ) -> None:
        self.host, self.port = host, port
        self.streams = list(streams)
        self.prefix = prefix
        self.discovery = discovery
        self.discovery_prefix = discovery_prefix
        self._present: dict[str, set[str]] = {s: set() for s in self.streams}
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"streamproc-{os.getpid()}-{id(self):x}"
        )
        if user is not None:
            self._client.username_pw_set(user, password)
        self._client.will_set(available_topic(prefix), "offline", qos=1, retain=True)
        self._connected = threading.Event()
        self._refused: str | None = None
        self._retained_configs: set[str] = set()
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message

    # -- paho callbacks (its network thread) ----------------------------------------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self._refused = str(reason)
        else:
            self._connected.set()
            client.publish(available_topic(self.prefix), "online", qos=1, retain=True)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        if message.retain and message.payload:
            self._retained_configs.add(message.topic)

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self, timeout: float = 10.0) -> None:
        """Connect (with the last will), announce discovery, clear stale entities."""
        self._client.connect_async(self.host, self.port, keepalive=30)
        self._client.loop_start()
        deadline = time.monotonic() + timeout
        while not self._connected.is_set():
            if self._refused is not None or time.monotonic() > deadline:
                self._client.loop_stop()
                why = self._refused or f"no answer within {timeout:.0f} s"
                raise MqttUnavailableError(f"MQTT at {self.host}:{self.port}: {why}")
            await asyncio.sleep(0.05)
        if self.discovery:
            await self._announce()
        for stream in self.streams:
            topics = StreamTopics(self.prefix, stream)
            self._publish(topics.person, "OFF")
        log.info("MQTT at %s:%d: %s/<stream>/..., discovery %s", self.host, self.port,
                 self.prefix, "on" if self.discovery else "off")

    async def _announce(self) -> None:
        """Clear the discovery configs of streams no longer deployed, then publish ours."""
        pattern = f"{self.discovery_prefix}/+/+/+/config"
        self._client.subscribe(pattern, qos=1)
        await asyncio.sleep(RETAINED_WAIT_S)
        self._client.unsubscribe(pattern)
        deployed = set(self.streams)
        for topic in sorted(self._retained_configs):
            stream = stream_of_node(topic.split("/")[-3])
            if stream is not None and stream not in deployed:
                log.info("MQTT: removing the Home Assistant entity %s (stream %s is gone)",
                         topic, stream)
                self._publish(topic, b"")
        for stream in self.streams:
            messages = discovery_messages(
                stream, prefix=self.prefix, discovery_prefix=self.discovery_prefix
            )
            for topic, payload in messages.items():
                self._publish(topic, json.dumps(payload).encode())

    async def stop(self) -> None:
        """Say offline (what the last will would say) and disconnect."""
        if not self._connected.is_set():
            return
        for stream in self.streams:
            self._publish(StreamTopics(self.prefix, stream).person, "OFF")
        info = self._client.publish(available_topic(self.prefix), "offline", qos=1, retain=True)
        await asyncio.to_thread(info.wait_for_publish, 5)
        self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()

    # -- EventSink ------------------------------------------------------------------------------

    def _publish(self, topic: str, payload: bytes | str, *, retain: bool = True) -> None:
        self._client.publish(topic, payload, qos=1, retain=retain)

    def on_status(self, stream_id: str, status: str, reason: str | None) -> None:
        topics = StreamTopics(self.prefix, stream_id)
        if status == "ONLINE":
            self._publish(topics.availability, "online")
        elif status in ("OFFLINE", "STOPPED"):
            self._publish(topics.availability, "offline")
            self._present.get(stream_id, set()).clear()
            self._publish(topics.person, "OFF")

    def on_events(self, stream_id: str, events: Sequence[Shape]) -> None:
        topics = StreamTopics(self.prefix, stream_id)
        present = self._present.setdefault(stream_id, set())
        for event in events:
            self._publish(topics.event, _json(event), retain=False)
            if isinstance(event, VisitorArrived):
                present.add(event.VisitorId)
                self._publish(topics.person, "ON")
            elif isinstance(event, VisitorLeft):
                present.discard(event.VisitorId)
                if not present:
                    self._publish(topics.person, "OFF")
            elif isinstance(event, VisitorIdentified):
                # The most recently identified visitor is "the" last visitor.
                self._publish(topics.visitor, event.ExternalImageId or "unknown")
                attributes = {
                    "matched": event.Matched,
                    "similarity": event.Similarity,
                    "visitor_id": event.VisitorId,
                    "time": event.Timestamp,
                    "revision": event.Revision,
                    "face_id": event.FaceId,
                }
                self._publish(topics.visitor_attributes, json.dumps(attributes).encode())
                if event.Snapshot:
                    self._publish(topics.snapshot, event.Snapshot)
