"""The MQTT topic layout (README, "Home Assistant"), in one place.

Like Frigate's ``frigate/<camera>/person`` and Double Take's ``double-take/...``, topics sit
under one prefix per application (``streamproc`` by default):

- ``streamproc/available``: ``online`` / ``offline`` (retained; the last will says offline);
- ``streamproc/<stream>/availability``: ``online`` / ``offline`` (retained), the camera's state;
- ``streamproc/<stream>/person``: ``ON`` while a visit is in progress, else ``OFF`` (retained);
- ``streamproc/<stream>/visitor``: the latest visitor's name, or ``unknown`` (retained);
  with two people present, the most recently identified one;
- ``streamproc/<stream>/visitor/attributes``: JSON with similarity, time, visitor id (retained);
- ``streamproc/<stream>/snapshot``: JPEG of the latest identified visitor (retained);
- ``streamproc/<stream>/event``: every event as JSON (live, not retained).

``streamproc/<stream>/frames|status|events`` are the NATS subjects themselves, in the
deployment's encoding (MQTT-readable with ``encoding: json``), hence the distinct names.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["StreamTopics", "available_topic"]


def available_topic(prefix: str) -> str:
    return f"{prefix}/available"


@dataclass(frozen=True)
class StreamTopics:
    prefix: str
    stream_id: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.stream_id}"

    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    @property
    def person(self) -> str:
        return f"{self.base}/person"

    @property
    def visitor(self) -> str:
        return f"{self.base}/visitor"

    @property
    def visitor_attributes(self) -> str:
        return f"{self.base}/visitor/attributes"

    @property
    def snapshot(self) -> str:
        return f"{self.base}/snapshot"

    @property
    def event(self) -> str:
        return f"{self.base}/event"
