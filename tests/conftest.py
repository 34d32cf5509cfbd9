"""Shared fixtures: real test photos, one engine for the session, real servers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streamproc.client import Client

pytest_plugins = ["tests.fixtures_streaming", "tests.console_browser"]

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def manifest() -> dict[str, Any]:
    return json.loads((DATA / "MANIFEST.json").read_text())


@pytest.fixture(scope="session")
def client(tmp_path_factory: pytest.TempPathFactory) -> Client:
    """One client (and so one set of loaded models) for the whole test session."""
    return Client(store=tmp_path_factory.mktemp("store"))


def image(path: str | Path) -> dict[str, bytes]:
    """A Rekognition ``Image`` parameter from a test data file."""
    return {"Bytes": (DATA / path).read_bytes()}
