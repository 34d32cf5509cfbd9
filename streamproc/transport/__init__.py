"""Messaging transport: the embedded NATS server (clients and subjects live beside it)."""

from streamproc.transport.nats_server import (
    MIN_NATS_SERVER_VERSION,
    EmbeddedNatsServer,
    NatsServerError,
    locate_nats_server,
    nats_server_version,
)

__all__ = [
    "MIN_NATS_SERVER_VERSION",
    "EmbeddedNatsServer",
    "NatsServerError",
    "locate_nats_server",
    "nats_server_version",
]
