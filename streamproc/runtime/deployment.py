"""Deployment files: what to watch, what to run on it, where results go.

A deployment is YAML validated with pydantic when it is loaded; an error names the file,
the key path and what was expected, and nothing starts. ``${VAR}`` (or
``${VAR:-default}``) in any string is replaced from the environment, so secrets stay
out of the file.
"""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from streamproc.buckets import BucketConfig, BucketName
from streamproc.operations import Operation

__all__ = [
    "Deployment",
    "DeploymentError",
    "EventsConfig",
    "HttpConfig",
    "JetStreamConfig",
    "NatsConfig",
    "OperationConfig",
    "ReuseConfig",
    "StreamConfig",
    "TlsConfig",
    "frame_request_model",
    "load_deployment",
    "parse_deployment",
]

StreamId = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9_-]+$", min_length=1, max_length=128)
]
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
IMAGE_FIELDS = ("Image", "SourceImage", "TargetImage")


class DeploymentError(ValueError):
    """A deployment file that cannot run; the message says where and why."""


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TlsConfig(_Config):
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None


class JetStreamConfig(_Config):
    """Publish through a JetStream stream: results survive a NATS restart."""

    stream: str = "STREAMPROC"
    max_age_s: float = Field(default=24 * 3600, gt=0)
    max_bytes: int = Field(default=1 << 30, gt=0)


class NatsConfig(_Config):
    """``url: embedded`` (the default) starts a private nats-server on loopback."""

    url: Literal["embedded"] | list[str] = "embedded"
    user: str | None = None
    password: str | None = None
    token: str | None = None
    credentials_file: Path | None = None
    tls: TlsConfig | None = None
    jetstream: JetStreamConfig | None = None

    @field_validator("url", mode="before")
    @classmethod
    def _one_url(cls, value: Any) -> Any:
        if isinstance(value, str) and value != "embedded":
            return [value]
        return value


class MqttConfig(_Config):
    """MQTT for Home Assistant and other MQTT tools, from the embedded nats-server.

    With ``nats.url: embedded`` this opens the embedded server's MQTT listener on
    ``host:port``; with an external NATS it names that server's MQTT listener (configured
    there: README, Home Assistant). streamproc publishes retained state and Home Assistant
    discovery through an MQTT connection with a last will.
    """

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=0, le=65535, description="0: any free port")
    user: str | None = None
    password: SecretStr | None = None
    token: SecretStr | None = None
    topic_prefix: str = Field(default="streamproc", pattern=r"^[A-Za-z0-9_\-]+$")
    discovery: bool = Field(default=True, description="Home Assistant MQTT discovery")
    discovery_prefix: str = Field(default="homeassistant", pattern=r"^[A-Za-z0-9_\-]+$")
    insecure: bool = Field(default=False, description="allow a non-loopback host without auth")

    @model_validator(mode="after")
    def _credentials(self) -> MqttConfig:
        if (self.user is None) != (self.password is None):
            raise ValueError("give both user and password, or neither")
        if self.user is not None and self.token is not None:
            raise ValueError("give user/password or token, not both")
        if (
            self.user is None and self.token is None and not self.insecure
            and self.host not in ("127.0.0.1", "::1", "localhost")
        ):
            raise ValueError(
                f"MQTT on {self.host} without user/password or token: anyone on the network "
                "could read your visitors; set credentials or insecure: true"
            )
        return self


class HistoryConfig(_Config):
    """Keep every visit (one row, its snapshot as a file) under ``<store>/history``."""

    enabled: bool = True
    retention_days: float = Field(default=30, gt=0, description="older visits are deleted")
    max_mb: float = Field(default=500, gt=0, description="database + snapshots, at most")


class HttpConfig(_Config):
    """The HTTP endpoint: the Rekognition API (AWS SDKs), WHIP publishers (WebRTC) and
    Prometheus ``/metrics``."""

    enabled: bool = Field(default=False, description="serve the API and /metrics")
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    api: bool = Field(default=True, description="answer the Rekognition API at POST /")
    auth: Path | None = Field(default=None, description="auth file: users, keys, policies")
    insecure: bool = Field(default=False, description="allow a non-loopback host without auth")
    console: bool = Field(default=True, description="serve the web console at /console/")
    thumbnails: bool = Field(
        default=True, description="the console keeps a small thumbnail of each face it indexes"
    )


class OperationConfig(_Config):
    """One operation per analysed frame, with its Rekognition parameters (no Image)."""

    model_config = ConfigDict(extra="allow")

    operation: str

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class EventsConfig(_Config):
    """Visitor events from tracked faces: arrivals and departures with any face operation,
    identities with SearchFacesByImage (README, "How a visit is decided")."""

    enabled: bool = True
    left_after_s: float = Field(default=3.0, gt=0, description="unseen this long: left")
    confirm_frames: int = Field(default=2, ge=1, description="frames before VisitorArrived")
    identify_after_frames: int = Field(
        default=3, ge=1, description="matches of one name (in the window) to announce it"
    )
    unknown_after_frames: int = Field(
        default=4, ge=1, description="recognisable frames matching nobody to announce unknown"
    )
    recognisable_quality: float = Field(
        default=0.35, ge=0, le=1, description="face quality from which no match is evidence"
    )
    evidence_window: int = Field(default=12, ge=1, description="latest evidence frames weighed")
    min_face_px: float = Field(
        default=40, ge=0, description="faces smaller than this (shorter side) are no visitors"
    )
    iou_threshold: float = Field(default=0.2, gt=0, lt=1, description="motion association")
    appearance_threshold: float = Field(
        default=0.25, ge=-1, le=1, description="embedding cosine below which it is someone else"
    )
    reassociate_threshold: float = Field(
        default=0.5, ge=-1, le=1, description="cosine that continues a track without motion"
    )
    scene_change: float = Field(
        default=0.5, gt=0, le=1, description="fraction of the picture changed that is a cut"
    )

    @model_validator(mode="after")
    def _thresholds(self) -> EventsConfig:
        if self.reassociate_threshold <= self.appearance_threshold:
            raise ValueError("reassociate_threshold must be above appearance_threshold")
        if max(self.unknown_after_frames, 2 * self.identify_after_frames) > self.evidence_window:
            raise ValueError(
                "evidence_window must hold unknown_after_frames and twice identify_after_frames"
            )
        return self


Point = tuple[Annotated[float, Field(ge=0, le=1)], Annotated[float, Field(ge=0, le=1)]]


class MotionConfig(_Config):
    """Motion gating: with nothing moving and nobody tracked, a frame runs no model."""

    enabled: bool = True
    threshold: float = Field(default=25, gt=0, le=255, description="grey levels that count")
    min_area: float = Field(default=0.002, ge=0, le=1, description="changed fraction that moves")
    mask: list[Annotated[list[Point], Field(min_length=3)]] = Field(
        default_factory=list,
        description="polygons (x, y ratios) where motion is ignored: a street, a tree",
    )


class ReuseConfig(_Config):
    """Identity reuse: a visitor already named is re-embedded about once a second (or after
    a scene cut, or when their face no longer looks like the last embedded one); frames in
    between carry the track's match (``MatchSource: TRACK``). Needs one SearchFacesByImage
    and no other operation that embeds faces."""

    enabled: bool = True
    max_age_s: float = Field(
        default=1.0, gt=0, le=60, description="re-embed a named visitor at least this often"
    )
    min_appearance: float = Field(
        default=0.7, ge=0, le=1,
        description="appearance similarity to the last embedded face needed to carry",
    )


class LabelEventsConfig(_Config):
    """Announce the first sighting of each of these labels per session (needs DetectLabels)."""

    labels: list[str] = Field(default_factory=lambda: ["Person", "Pet", "Dog", "Cat", "Car"])
    min_confidence: float = Field(default=70.0, ge=0, le=100)


class WhipConfig(_Config):
    token: str = Field(min_length=8)


class StreamConfig(_Config):
    id: StreamId
    url: str | None = None
    detect_url: str | None = Field(
        default=None,
        description="the camera's low-resolution substream (Frigate's detect role): decoded "
        "and analysed instead of url, which is then never opened",
    )
    whip: WhipConfig | None = None
    fps: float = Field(default=5.0, gt=0, le=120, description="analysed frames per second")
    loop: bool = False
    realtime: bool = True
    operations: list[OperationConfig] = Field(min_length=1)
    events: EventsConfig = Field(default_factory=EventsConfig)
    motion: MotionConfig = Field(default_factory=MotionConfig)
    reuse: ReuseConfig = Field(default_factory=ReuseConfig)
    label_events: LabelEventsConfig | None = None

    @model_validator(mode="after")
    def _one_source(self) -> StreamConfig:
        if (self.url is None) == (self.whip is None):
            raise ValueError("give exactly one source: url (rtsp://, file path) or whip")
        if self.detect_url is not None:
            if self.url is None:
                raise ValueError("detect_url is a substream of the camera's url: give url too "
                                 "(a WHIP stream has no substream)")
            if not self.detect_url.strip():
                raise ValueError("detect_url is empty")
            if self.detect_url == self.url:
                raise ValueError("detect_url is the same as url: leave detect_url out")
        return self

    @property
    def analysed_url(self) -> str | None:
        """The URL decoded and analysed: the substream when there is one."""
        return self.detect_url or self.url


class ClusterConfig(_Config):
    """Several nodes on one NATS cluster (README, "Scaling out"): collections replicated
    through a JetStream log, each camera run by one node at a time under a lease."""

    node: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$",
                      description="this node's name, unique in the cluster")
    replicas: int = Field(default=3, ge=1, le=5, description="JetStream replicas of the log")
    log_stream: str = Field(default="STREAMPROC_COLLECTIONS", pattern=r"^[A-Za-z0-9_\-]+$")
    read_wait_s: float = Field(default=5.0, gt=0, description="an API read waits this long "
                               "to catch up with the log")
    lease_s: float = Field(default=10.0, ge=1.0, le=300,
                           description="a dead node's cameras move within this bound")
    lease_bucket: str = Field(default="STREAMPROC_LEASES", pattern=r"^[A-Za-z0-9_\-]+$",
                              description="the JetStream KV bucket of the camera leases")
    snapshot_records: int = Field(
        default=1000, ge=10, description="snapshot a collection (and let its older records "
        "go) after at least this many records, and at least half a record per face"
    )
    compact_check_s: float = Field(default=60.0, gt=0, le=3600,
                                   description="how often a node looks for collections to "
                                   "snapshot")


class Deployment(_Config):
    cluster: ClusterConfig | None = Field(
        default=None, description="scale out on a NATS cluster; unset: one node, as always"
    )
    nats: NatsConfig = Field(default_factory=NatsConfig)
    store: Path | None = None
    encoding: Literal["msgpack", "json"] = "msgpack"
    workers: int = Field(default=2, ge=1, le=64, description="inference threads")
    threads: int | None = Field(default=None, ge=1, description="onnxruntime threads per model")
    http: HttpConfig = Field(default_factory=HttpConfig)
    service: bool = Field(default=True, description="answer rekognition.* requests on NATS")
    mqtt: MqttConfig | None = Field(default=None, description="MQTT and Home Assistant")
    history: HistoryConfig = Field(default_factory=HistoryConfig)
    streams: list[StreamConfig] = Field(default_factory=list)
    buckets: dict[BucketName, BucketConfig] | None = Field(
        default=None, description="Image.S3Object buckets; unset: STREAMPROC_BUCKETS"
    )

    @model_validator(mode="after")
    def _cluster_needs_nats(self) -> Deployment:
        if self.cluster is not None and self.nats.url == "embedded":
            raise ValueError(
                "cluster: needs nats.url to list the cluster's servers (an embedded "
                "nats-server is one node's private server, not a cluster)"
            )
        return self

    @model_validator(mode="after")
    def _unique_ids(self) -> Deployment:
        ids = [s.id for s in self.streams]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"stream ids must be unique: {', '.join(duplicates)}")
        return self


def _expand_env(value: Any, path: str) -> Any:
    if isinstance(value, str):

        def repl(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise DeploymentError(f"{path}: environment variable {name} is not set")

        return _ENV.sub(repl, value)
    if isinstance(value, dict):
        return {k: _expand_env(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


@cache
def frame_request_model(operation: Operation) -> type[BaseModel]:
    """The operation's request shape without its image fields: parameters for every frame."""
    fields = {
        name: (info.annotation, info)
        for name, info in operation.request.model_fields.items()
        if name not in IMAGE_FIELDS
    }
    return create_model(  # type: ignore[call-overload, no-any-return]
        f"{operation.name}FrameRequest",
        __config__=ConfigDict(extra="forbid"),
        **fields,
    )


def _format_errors(source: str, exc: ValidationError, prefix: str = "") -> str:
    lines = [f"{source}: invalid deployment"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        where = f"{prefix}.{loc}" if prefix and loc else (prefix or loc or "(top level)")
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)


def parse_deployment(
    data: Any, *, source: str = "<deployment>", operations: dict[str, Operation] | None = None
) -> Deployment:
    """Validate a loaded YAML document; with ``operations``, also every operation's params."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise DeploymentError(f"{source}: expected a mapping at the top level")
    data = _expand_env(data, "")
    try:
        deployment = Deployment.model_validate(data)
    except ValidationError as exc:
        raise DeploymentError(_format_errors(source, exc)) from None
    if operations is not None:
        for i, stream in enumerate(deployment.streams):
            for j, op in enumerate(stream.operations):
                where = f"streams[{i}].operations[{j}]"
                operation = operations.get(op.operation)
                if operation is None:
                    raise DeploymentError(
                        f"{source}: {where}.operation: unknown operation {op.operation!r}; "
                        f"known: {', '.join(sorted(operations))}"
                    )
                if operation.frame_handler is None:
                    raise DeploymentError(
                        f"{source}: {where}.operation: {op.operation} cannot run per frame"
                    )
                try:
                    frame_request_model(operation).model_validate(op.params)
                except ValidationError as exc:
                    raise DeploymentError(_format_errors(source, exc, where)) from None
    return deployment


def load_deployment(
    path: str | Path, *, operations: dict[str, Operation] | None = None
) -> Deployment:
    """Read and validate a deployment file; every problem is a DeploymentError."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise DeploymentError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DeploymentError(f"{path}: not valid YAML: {exc}") from None
    return parse_deployment(data, source=str(path), operations=operations)
