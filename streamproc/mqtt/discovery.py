"""Home Assistant MQTT discovery: each stream becomes a device with visitor entities.

Config messages are retained at ``<discovery_prefix>/<component>/<node_id>/<object_id>/config``
(Home Assistant's documented layout) with node id ``streamproc_<stream>``, so a restarted
streamproc can find and clear the entities of streams no longer deployed. Per stream:

- ``binary_sensor`` "Person": ``ON`` while someone is at the camera (device class occupancy);
- ``sensor`` "Last visitor": name or ``unknown``, with similarity, time and visitor id as
  attributes;
- ``image`` "Last visitor snapshot": the JPEG of the latest identification.

All three are available only while streamproc is up and the camera is online.
"""

from __future__ import annotations

import re
from typing import Any

from streamproc import __version__
from streamproc.mqtt.topics import StreamTopics, available_topic

__all__ = ["NODE_PREFIX", "discovery_messages", "node_id", "stream_of_node"]

NODE_PREFIX = "streamproc_"


def node_id(stream_id: str) -> str:
    """Home Assistant ids allow ``[a-zA-Z0-9_-]``: stream ids already fit."""
    return NODE_PREFIX + re.sub(r"[^a-zA-Z0-9_-]", "_", stream_id)


def stream_of_node(node: str) -> str | None:
    return node[len(NODE_PREFIX):] if node.startswith(NODE_PREFIX) else None


def discovery_messages(
    stream_id: str, *, prefix: str, discovery_prefix: str
) -> dict[str, dict[str, Any]]:
    """Config topic → payload for every entity of one stream."""
    topics = StreamTopics(prefix, stream_id)
    node = node_id(stream_id)
    common: dict[str, Any] = {
        "availability": [
            {"topic": available_topic(prefix)},
            {"topic": topics.availability},
        ],
        "availability_mode": "all",
        "device": {
            "identifiers": [node],
            "name": stream_id,
            "manufacturer": "streamproc",
            "model": "Camera stream",
            "sw_version": __version__,
        },
        "origin": {"name": "streamproc", "sw_version": __version__},
    }
    entities = {
        ("binary_sensor", "person"): {
            "name": "Person",
            "state_topic": topics.person,
            "payload_on": "ON",
            "payload_off": "OFF",
            "device_class": "occupancy",
        },
        ("sensor", "last_visitor"): {
            "name": "Last visitor",
            "state_topic": topics.visitor,
            "json_attributes_topic": topics.visitor_attributes,
            "icon": "mdi:doorbell-video",
        },
        ("image", "snapshot"): {
            "name": "Last visitor snapshot",
            "image_topic": topics.snapshot,
            "content_type": "image/jpeg",
        },
    }
    return {
        f"{discovery_prefix}/{component}/{node}/{object_id}/config": {
            **payload,
            "unique_id": f"{node}_{object_id}",
            "object_id": f"{node}_{object_id}",
            **common,
        }
        for (component, object_id), payload in entities.items()
    }
