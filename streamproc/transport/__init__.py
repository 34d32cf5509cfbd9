"""Messaging transport: the embedded NATS server, wire codecs, publisher, request/reply."""

from streamproc.transport.codec import Codec, CodecError, codec_for, detect_codec
from streamproc.transport.nats_server import (
    MIN_NATS_SERVER_VERSION,
    EmbeddedNatsServer,
    NatsServerError,
    locate_nats_server,
    nats_server_version,
)
from streamproc.transport.publisher import (
    Publisher,
    PublisherStats,
    events_subject,
    frames_subject,
    status_subject,
    validate_stream_id,
)
from streamproc.transport.service import (
    RekognitionService,
    RemoteClient,
    ServiceUnavailableError,
    operation_subject,
)

__all__ = [
    "MIN_NATS_SERVER_VERSION",
    "Codec",
    "CodecError",
    "EmbeddedNatsServer",
    "NatsServerError",
    "Publisher",
    "PublisherStats",
    "RekognitionService",
    "RemoteClient",
    "ServiceUnavailableError",
    "codec_for",
    "detect_codec",
    "events_subject",
    "frames_subject",
    "locate_nats_server",
    "nats_server_version",
    "operation_subject",
    "status_subject",
    "validate_stream_id",
]
