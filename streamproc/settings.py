"""Process-wide settings, from arguments first and ``STREAMPROC_*`` variables second."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs
from pydantic import BaseModel, Field

__all__ = ["Settings"]


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


class Settings(BaseModel):
    """What the operations need to know about where and how they run."""

    store: Path = Field(
        default_factory=lambda: Path(
            _env("STREAMPROC_STORE") or platformdirs.user_data_dir("streamproc")
        )
    )
    region: str = Field(default_factory=lambda: _env("STREAMPROC_REGION") or "us-east-1")
    account_id: str = Field(default_factory=lambda: _env("STREAMPROC_ACCOUNT_ID") or "000000000000")
    threads: int | None = Field(
        default_factory=lambda: int(v) if (v := _env("STREAMPROC_THREADS")) else None
    )
