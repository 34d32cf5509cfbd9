"""Process-wide settings, from arguments first and ``STREAMPROC_*`` variables second."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import BaseModel, ConfigDict, Field

from streamproc.buckets import BucketConfig, BucketName

__all__ = [
    "ACCOUNT_ENV",
    "BUCKETS_ENV",
    "CACHE_ENV",
    "CATALOG_ENV",
    "REGION_ENV",
    "STORE_ENV",
    "THREADS_ENV",
    "Settings",
]

#: Every environment variable streamproc reads, here and nowhere else.
STORE_ENV = "STREAMPROC_STORE"
REGION_ENV = "STREAMPROC_REGION"
ACCOUNT_ENV = "STREAMPROC_ACCOUNT_ID"
THREADS_ENV = "STREAMPROC_THREADS"
BUCKETS_ENV = "STREAMPROC_BUCKETS"
CACHE_ENV = "STREAMPROC_CACHE_DIR"
CATALOG_ENV = "STREAMPROC_CELEBRITIES"


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _env_threads() -> int | None:
    raw = _env(THREADS_ENV)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{THREADS_ENV}={raw!r} is not an integer") from None


def _env_path(name: str) -> Path | None:
    raw = _env(name)
    return Path(raw).expanduser() if raw else None


def _env_buckets() -> Any:
    """``STREAMPROC_BUCKETS`` as JSON; validated like buckets given as arguments."""
    text = _env(BUCKETS_ENV)
    if text is None:
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{BUCKETS_ENV} is not valid JSON: {exc}") from None


class Settings(BaseModel):
    """What the operations need to know about where and how they run."""

    # Errors name the setting, never its value: bucket settings carry secret keys.
    model_config = ConfigDict(hide_input_in_errors=True)

    store: Path = Field(
        default_factory=lambda: _env_path(STORE_ENV)
        or Path(platformdirs.user_data_dir("streamproc"))
    )
    region: str = Field(default_factory=lambda: _env(REGION_ENV) or "us-east-1")
    account_id: str = Field(default_factory=lambda: _env(ACCOUNT_ENV) or "000000000000")
    threads: int | None = Field(default_factory=_env_threads)
    cache_dir: Path = Field(
        default_factory=lambda: _env_path(CACHE_ENV)
        or Path(platformdirs.user_cache_dir("streamproc")),
        description="prepared models are cached under <cache_dir>/models",
    )
    celebrities: Path | None = Field(
        default_factory=lambda: _env_path(CATALOG_ENV),
        description="celebrity catalog file (None: the bundled one)",
    )
    buckets: dict[BucketName, BucketConfig] = Field(
        default_factory=_env_buckets,
        validate_default=True,
        description="S3Object buckets by the name requests give (README, Images in S3 buckets)",
    )

    @classmethod
    def default(cls, name: str) -> Any:
        """One setting from the environment (or its built-in default), without reading the
        others: for modules that need a single value and no Settings object."""
        field = cls.model_fields[name]
        factory = field.default_factory
        return factory() if factory is not None else field.default  # type: ignore[call-arg]
