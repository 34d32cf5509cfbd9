"""Where ``Image.S3Object`` references are read from: local directories or S3 endpoints.

A request names a bucket as Rekognition would (``{"Bucket": "photos", "Name": "a.jpg"}``);
the configuration maps that name to a directory on this machine (the embedded default,
no S3 server needed) or to an S3-compatible endpoint (MinIO, Ceph, AWS) read with boto3.
Every failure is a Rekognition error naming the requested bucket and key, never a
server path, an endpoint's credentials or its address.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    StringConstraints,
    Tag,
    TypeAdapter,
    model_validator,
)

from streamproc.errors import ImageTooLargeException, InvalidS3ObjectException

if TYPE_CHECKING:
    from streamproc.shapes import S3Object

__all__ = [
    "MAX_S3_IMAGE_BYTES",
    "BucketConfig",
    "BucketName",
    "Buckets",
    "DirectoryBucket",
    "DirectoryBucketConfig",
    "S3Bucket",
    "S3BucketConfig",
    "load_buckets",
]

log = logging.getLogger(__name__)

#: The reference's limit for an image stored as an S3 object (5 MB as bytes).
MAX_S3_IMAGE_BYTES = 15 * 1024 * 1024

#: Bucket names as ``S3Object.Bucket`` accepts them, so every configured bucket is reachable.
BucketName = Annotated[
    str, StringConstraints(min_length=3, max_length=255, pattern=r"^[0-9A-Za-z.\-_]*$")
]

HOW_TO_CONFIGURE = (
    "name buckets under `buckets:` in the deployment or in STREAMPROC_BUCKETS "
    '(JSON, e.g. {"photos": {"path": "/srv/photos"}})'
)


class _Config(BaseModel):
    # A configuration error must not print the secret it was given.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class DirectoryBucketConfig(_Config):
    """A directory on this machine; object keys are paths below it (no versions)."""

    path: Path


class S3BucketConfig(_Config):
    """An S3-compatible endpoint; without keys, boto3's own credential chain is used."""

    endpoint_url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s/]+")]
    bucket: str | None = Field(
        default=None, min_length=1, description="the endpoint's bucket; default: the name"
    )
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    prefix: str = Field(default="", description="a folder in the bucket the keys are below")
    addressing_style: Literal["path", "virtual", "auto"] = "path"

    @model_validator(mode="after")
    def _both_keys(self) -> S3BucketConfig:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("give both access_key_id and secret_access_key, or neither")
        return self


def _bucket_kind(value: Any) -> str | None:
    """``path`` makes a directory bucket and ``endpoint_url`` an S3 one: errors name one kind."""
    if isinstance(value, DirectoryBucketConfig):
        return "directory"
    if isinstance(value, S3BucketConfig):
        return "s3"
    if isinstance(value, Mapping):
        if "path" in value:
            return "directory"
        if "endpoint_url" in value:
            return "s3"
    return None


BucketConfig = Annotated[
    Annotated[DirectoryBucketConfig, Tag("directory")] | Annotated[S3BucketConfig, Tag("s3")],
    Discriminator(
        _bucket_kind,
        custom_error_type="bucket_kind",
        custom_error_message="a bucket needs path (a directory) or endpoint_url (an S3 endpoint)",
    ),
]

_BUCKETS_ADAPTER: TypeAdapter[dict[str, DirectoryBucketConfig | S3BucketConfig]] = TypeAdapter(
    dict[BucketName, BucketConfig], config=ConfigDict(title="buckets", hide_input_in_errors=True)
)


def _where(bucket: str, key: str, version: str | None = None) -> str:
    where = f"s3://{bucket}/{key}"
    return f"{where} (version {version})" if version is not None else where


def _too_large(bucket: str, key: str, size: int, max_bytes: int) -> ImageTooLargeException:
    return ImageTooLargeException(
        f"{_where(bucket, key)} is {size} bytes; the limit for images in S3 is "
        f"{max_bytes} ({max_bytes / 2**20:g} MB)"
    )


class Bucket(Protocol):
    """One configured bucket: reads an object, at most ``max_bytes`` + 1 of it."""

    def get(self, name: str, key: str, version: str | None, *, max_bytes: int) -> bytes: ...

    def close(self) -> None: ...


class DirectoryBucket:
    """Objects are regular files below one directory; no key can lead out of it."""

    def __init__(self, config: DirectoryBucketConfig) -> None:
        self.config = config

    def get(self, name: str, key: str, version: str | None, *, max_bytes: int) -> bytes:
        if version is not None:
            raise InvalidS3ObjectException(
                f"bucket {name!r} is a directory, which keeps no versions: "
                f"{_where(name, key, version)} cannot be read (leave out S3Object.Version)"
            )
        outside = InvalidS3ObjectException(f"{_where(name, key)} is outside the bucket")
        not_found = InvalidS3ObjectException(f"{_where(name, key)} not found")
        parts = key.split("/")
        if "\0" in key or "\\" in key or key.startswith("/") or ".." in parts:
            raise outside
        try:
            root = self.config.path.resolve(strict=True)
        except (OSError, RuntimeError):
            log.warning("bucket %r: directory %s is missing", name, self.config.path)
            raise InvalidS3ObjectException(
                f"bucket {name!r} is not available on this server"
            ) from None
        try:
            path = root.joinpath(*parts).resolve(strict=True)
        except (OSError, RuntimeError, ValueError):  # missing, a symlink loop, unencodable
            raise not_found from None
        if not path.is_relative_to(root):  # a symlink that leads out of the bucket
            raise outside
        try:
            # O_NONBLOCK: a FIFO is not waited on; it is refused below as not a regular file.
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM):
                raise InvalidS3ObjectException(
                    f"{_where(name, key)} cannot be read (access denied)"
                ) from None
            raise not_found from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):  # a directory, a device, a FIFO, a socket
                raise not_found
            if info.st_size > max_bytes:
                raise _too_large(name, key, info.st_size, max_bytes)
            chunks, left = [], max_bytes + 1  # the file may have grown since fstat
            while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
                chunks.append(chunk)
                left -= len(chunk)
        finally:
            os.close(fd)
        data = b"".join(chunks)
        if len(data) > max_bytes:
            raise _too_large(name, key, len(data), max_bytes)
        return data

    def close(self) -> None:
        pass


#: S3 error codes that mean "this object (or version) is not there".
_NOT_FOUND = {"NoSuchKey", "NoSuchVersion", "NoSuchBucket", "404", "NotFound"}
_DENIED = {"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"}


class S3Bucket:
    """An S3-compatible endpoint through boto3, imported and connected on first use."""

    def __init__(self, config: S3BucketConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._client: Any = None

    def _s3(self, name: str) -> Any:
        with self._lock:
            if self._client is None:
                try:
                    import boto3
                    from botocore.config import Config
                except ImportError:
                    raise InvalidS3ObjectException(
                        f"bucket {name!r} is an S3 endpoint, which needs boto3: "
                        "pip install 'streamproc[s3]'"
                    ) from None
                c = self.config
                session = boto3.session.Session()  # clients of one session share no state
                self._client = session.client(
                    "s3",
                    endpoint_url=c.endpoint_url,
                    region_name=c.region,
                    aws_access_key_id=c.access_key_id,
                    aws_secret_access_key=(
                        c.secret_access_key.get_secret_value() if c.secret_access_key else None
                    ),
                    config=Config(
                        s3={"addressing_style": c.addressing_style},
                        connect_timeout=5,
                        read_timeout=30,
                        retries={"max_attempts": 2, "mode": "standard"},
                    ),
                )
            return self._client

    def _key(self, key: str) -> str:
        prefix = self.config.prefix.strip("/")
        return f"{prefix}/{key}" if prefix else key

    def get(self, name: str, key: str, version: str | None, *, max_bytes: int) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        where = _where(name, key, version)
        args: dict[str, Any] = {"Bucket": self.config.bucket or name, "Key": self._key(key)}
        if version is not None:
            args["VersionId"] = version
        s3 = self._s3(name)
        try:
            response = s3.get_object(**args)
            body = response["Body"]
            try:
                size = response.get("ContentLength")
                if size is not None and size > max_bytes:
                    raise _too_large(name, key, size, max_bytes)
                data: bytes = body.read(max_bytes + 1)
            finally:
                body.close()
        except ClientError as exc:
            # Only the error code: S3's messages may echo request details.
            code = str(exc.response.get("Error", {}).get("Code", "unknown"))
            if code in _NOT_FOUND:
                raise InvalidS3ObjectException(f"{where} not found") from None
            if code in _DENIED:
                raise InvalidS3ObjectException(
                    f"{where} cannot be read (access denied: {code})"
                ) from None
            raise InvalidS3ObjectException(f"{where} cannot be read (S3 error {code})") from None
        except BotoCoreError as exc:
            log.warning("bucket %r: %s failed: %s", name, self.config.endpoint_url, exc)
            raise InvalidS3ObjectException(
                f"{where} cannot be read: the S3 endpoint of bucket {name!r} failed "
                f"({type(exc).__name__})"
            ) from None
        if len(data) > max_bytes:
            raise _too_large(name, key, len(data), max_bytes)
        return data

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


class Buckets:
    """The configured buckets by the name requests give in ``S3Object.Bucket``."""

    def __init__(self, backends: Mapping[str, Bucket] | None = None) -> None:
        self._backends: dict[str, Bucket] = dict(backends or {})

    @property
    def names(self) -> list[str]:
        return sorted(self._backends)

    def __contains__(self, name: object) -> bool:
        return name in self._backends

    def __len__(self) -> int:
        return len(self._backends)

    def fetch(self, s3: S3Object, *, max_bytes: int = MAX_S3_IMAGE_BYTES) -> bytes:
        """The object's bytes; anything that keeps them from us is InvalidS3ObjectException."""
        bucket, key, version = s3.Bucket, s3.Name, s3.Version
        if not self._backends:
            raise InvalidS3ObjectException(
                "S3 is not configured in streamproc: pass the image as Bytes, or "
                f"{HOW_TO_CONFIGURE} (requested {_where(bucket or '', key or '')})"
            )
        if not bucket or not key:
            raise InvalidS3ObjectException("Image.S3Object needs both Bucket and Name")
        backend = self._backends.get(bucket)
        if backend is None:
            raise InvalidS3ObjectException(
                f"bucket {bucket!r} is not configured in streamproc (requested "
                f"{_where(bucket, key)}; configured: {', '.join(self.names)})"
            )
        return backend.get(bucket, key, version, max_bytes=max_bytes)

    def close(self) -> None:
        for backend in self._backends.values():
            backend.close()


def load_buckets(data: Mapping[str, Any]) -> Buckets:
    """Buckets from configuration (models or plain mappings); invalid shapes raise ValueError."""
    configs = _BUCKETS_ADAPTER.validate_python(dict(data))
    backends: dict[str, Bucket] = {}
    for name, config in configs.items():
        if isinstance(config, DirectoryBucketConfig):
            backends[name] = DirectoryBucket(config)
        else:
            backends[name] = S3Bucket(config)
    return Buckets(backends)
