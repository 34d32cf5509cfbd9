"""MQTT and Home Assistant discovery from the embedded nats-server, with a real MQTT client.

A real visit over RTSP (the elon clip) through `mqtt: {...}` in a deployment: discovery
configs retained with the keys Home Assistant's MQTT discovery documentation requires, the
person binary sensor ON then OFF, the last visitor's name, attributes and snapshot, stream
availability, the last will, stale entities cleared, credentials enforced, loopback only.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from streamproc.client import Client
from streamproc.mqtt.discovery import discovery_messages
from streamproc.runtime.deployment import DeploymentError, parse_deployment
from streamproc.runtime.runtime import Runtime
from tests.fixtures_streaming import RtspTestServer

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "tests/data/visits/elon.mp4"
USER, PASSWORD = "homeassistant", "mqtt-password-123"

#: What Home Assistant's MQTT discovery documentation requires of each component.
REQUIRED = {
    "binary_sensor": {"state_topic"},
    "sensor": {"state_topic"},
    "image": set(),  # exactly one of image_topic / url_topic (checked below)
}


class Recorder:
    """A paho-mqtt client that keeps every message it receives."""

    def __init__(self, port: int, user: str = USER, password: str = PASSWORD) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.result: Any = None
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{id(self):x}")
        self.client.username_pw_set(user, password)
        self.client.on_connect = lambda c, u, f, reason, p: setattr(self, "result", reason)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        deadline = time.monotonic() + 10
        while self.result is None and time.monotonic() < deadline:
            time.sleep(0.02)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        with self.lock:
            self.messages.append((message.topic, bytes(message.payload), bool(message.retain)))

    def subscribe(self, *patterns: str) -> None:
        for pattern in patterns:
            self.client.subscribe(pattern, qos=1)

    def payloads(self, topic: str) -> list[bytes]:
        with self.lock:
            return [p for t, p, _ in self.messages if t == topic]

    async def wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                topics = sorted({t for t, _, _ in self.messages})
                raise AssertionError(f"timed out waiting for {what}; topics seen: {topics}")
            await asyncio.sleep(0.05)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(scope="module")
def elon_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("mqtt-store")
    with Client(store=store) as client:
        client.create_collection(CollectionId="household")
        for photo in sorted((ROOT / "examples/household/elon").iterdir()):
            client.index_faces(CollectionId="household", Image={"Bytes": photo.read_bytes()},
                               ExternalImageId="elon", MaxFaces=1)
    return store


def _deployment(store: Path, url: str, stream_id: str = "front-door", **mqtt: Any) -> Any:
    return parse_deployment({
        "store": str(store),
        "mqtt": {"port": 0, "user": USER, "password": PASSWORD, **mqtt},
        "streams": [{
            "id": stream_id, "url": url, "fps": 5,
            "operations": [{"operation": "SearchFacesByImage", "CollectionId": "household"}],
            "events": {"left_after_s": 1.0},
        }],
    })


async def test_a_visit_reaches_home_assistant_over_mqtt(
    rtsp_server: Callable[..., RtspTestServer], elon_store: Path
) -> None:
    camera = rtsp_server(clip=CLIP, name="door")
    # An earlier run of the same store deployed a stream that is gone now.
    earlier = Runtime(_deployment(elon_store, camera.url, stream_id="old-cam"))
    await earlier.start()
    await earlier.close()
    runtime = Runtime(_deployment(elon_store, camera.url))
    await runtime.start()
    assert runtime.mqtt_port is not None
    ha = Recorder(runtime.mqtt_port)
    ha.subscribe("homeassistant/#", "streamproc/#")
    task = asyncio.create_task(runtime.run())
    try:
        await ha.wait(lambda: b"ON" in ha.payloads("streamproc/front-door/person"), 60, "ON")
        # A client connecting now (Home Assistant restarting) reads the retained configs.
        late = Recorder(runtime.mqtt_port)
        late.subscribe("homeassistant/#")
        await late.wait(lambda: len(late.messages) >= 3, 10, "retained discovery configs")
        late.close()
        await ha.wait(lambda: b"elon" in ha.payloads("streamproc/front-door/visitor"), 60,
                      "the last visitor's name")
        await ha.wait(lambda: ha.payloads("streamproc/front-door/person")[-1:] == [b"OFF"], 60,
                      "OFF after the visit")
    finally:
        runtime.stop()
        await asyncio.wait_for(task, 30)
    ha.close()

    # Discovery: retained, with the required keys, grouped in one device per stream.
    configs = {t: json.loads(p) for t, p, _ in ha.messages
               if t.startswith("homeassistant/") and t.endswith("/config") and p}
    expected = discovery_messages("front-door", prefix="streamproc",
                                  discovery_prefix="homeassistant")
    assert set(expected) <= set(configs)
    for topic, config in expected.items():
        component = topic.split("/")[1]
        assert REQUIRED[component] <= set(config), topic
        assert config["device"]["identifiers"] == ["streamproc_front-door"]
        assert config["unique_id"] and config["availability_mode"] == "all"
        assert {a["topic"] for a in config["availability"]} == {
            "streamproc/available", "streamproc/front-door/availability"}
        if component == "image":
            assert ("image_topic" in config) != ("url_topic" in config)
            assert config["content_type"] == "image/jpeg"
    assert {t for t, p, retain in late.messages if retain and p} >= set(expected)
    # The removed stream's entities were cleared (survived the restart, then emptied).
    assert not [t for t, p, _ in late.messages if "streamproc_old-cam" in t and p]

    # State: person ON then OFF, the visitor's name, attributes and snapshot.
    person = ha.payloads("streamproc/front-door/person")
    assert person.index(b"ON") < len(person) - 1 and person[-1] == b"OFF"
    attributes = json.loads(ha.payloads("streamproc/front-door/visitor/attributes")[-1])
    assert attributes["matched"] is True and attributes["similarity"] >= 80
    snapshot = ha.payloads("streamproc/front-door/snapshot")[-1]
    assert snapshot[:3] == b"\xff\xd8\xff"
    events = [json.loads(p) for p in ha.payloads("streamproc/front-door/event")]
    assert [e["EventType"] for e in events][:1] == ["VisitorArrived"]
    assert "Snapshot" not in next(e for e in events if e["EventType"] == "VisitorIdentified")
    assert b"online" in ha.payloads("streamproc/front-door/availability")
    assert ha.payloads("streamproc/front-door/availability")[-1] == b"offline"
    assert ha.payloads("streamproc/available")[-1] == b"offline"


async def test_credentials_last_will_and_loopback(tmp_path: Path) -> None:
    deployment = _deployment(tmp_path / "store", str(CLIP))
    runtime = Runtime(deployment)
    await runtime.start()
    try:
        port = runtime.mqtt_port
        assert port is not None
        intruder = Recorder(port, password="wrong")
        assert intruder.result is not None and intruder.result.is_failure
        intruder.close()
        # Nothing listens beyond loopback.
        others = {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None,
                                                            socket.AF_INET)}
        for address in others - {"127.0.0.1"}:
            if address.startswith("127."):
                continue
            with pytest.raises(OSError), socket.create_connection((address, port), timeout=2):
                pass
        ha = Recorder(port)
        ha.subscribe("streamproc/available")
        await ha.wait(lambda: ha.payloads("streamproc/available")[-1:] == [b"online"], 10,
                      "retained online")
        # The bridge dies without saying goodbye: the server publishes its last will.
        assert runtime.mqtt is not None
        client = runtime.mqtt._client  # noqa: SLF001 - simulate a crash of the connection
        client.loop_stop()
        sock = client.socket()
        assert sock is not None
        sock.close()
        await ha.wait(lambda: ha.payloads("streamproc/available")[-1:] == [b"offline"], 60,
                      "the last will")
        ha.close()
        # Retained: a client connecting now still reads offline.
        late = Recorder(port)
        late.subscribe("streamproc/available")
        await late.wait(lambda: bool(late.payloads("streamproc/available")), 10, "retained")
        assert late.payloads("streamproc/available")[-1] == b"offline"
        late.close()
    finally:
        runtime.mqtt = None  # its connection is gone already
        await runtime.close()


def test_mqtt_settings_are_validated() -> None:
    with pytest.raises(DeploymentError, match="without user/password or token"):
        parse_deployment({"mqtt": {"host": "0.0.0.0"}})
    with pytest.raises(DeploymentError, match="both user and password"):
        parse_deployment({"mqtt": {"user": "ha"}})
    assert parse_deployment({"mqtt": {"host": "0.0.0.0", "insecure": True}}).mqtt is not None


async def test_token_authentication() -> None:
    """``mqtt: {token: ...}``: MQTT clients give the token as their password."""
    from streamproc.mqtt import MqttBridge, MqttUnavailableError
    from streamproc.transport.nats_server import EmbeddedNatsServer, MqttListener

    server = EmbeddedNatsServer(mqtt=MqttListener(port=0, token="token-0123456789"))
    await server.start_async()
    try:
        assert server.mqtt_port is not None
        good = MqttBridge("127.0.0.1", server.mqtt_port, ["door"], user="token",
                          password="token-0123456789", discovery=False)
        await good.start(timeout=10)
        await good.stop()
        bad = MqttBridge("127.0.0.1", server.mqtt_port, ["door"], user="token",
                         password="wrong", discovery=False)
        with pytest.raises(MqttUnavailableError, match="Not authorized"):
            await bad.start(timeout=10)
    finally:
        server.stop()
