"""The on-disk cache of prepared ONNX files, keyed by their sha256.

Preparation runs once per machine, on first use. Files are written to a
temporary name and renamed into place, so concurrent processes (each producing
the same bytes) and a kill -9 mid-write never leave a truncated model behind.
Every file is checked against the manifest before it is used.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
from pathlib import Path

from streamproc.settings import CACHE_ENV, Settings

from .errors import ModelChecksumError
from .manifest import Manifest, ModelSpec, load_manifest
from .prepare import prepare_bytes
from .shipped import check_sha256, sha256_file, verified_shipped

__all__ = ["CACHE_ENV", "cache_dir", "cached_path", "ensure_prepared", "model_path"]

_STALE_TMP_S = 3600.0

_lock = threading.Lock()
_verified: set[Path] = set()


def cache_dir() -> Path:
    """``$STREAMPROC_CACHE_DIR/models`` or the platform cache's ``streamproc/models``."""
    return Path(Settings.default("cache_dir")) / "models"


def cached_path(spec: ModelSpec) -> Path:
    return cache_dir() / f"{spec.name}-{spec.prepared_sha256}.onnx"


def _sweep_stale_tmp(directory: Path) -> None:
    """Remove temp files that a killed writer left behind long ago."""
    now = time.time()
    for tmp in directory.glob(".*.tmp"):
        try:
            if now - tmp.stat().st_mtime > _STALE_TMP_S:
                tmp.unlink()
        except OSError:
            pass


def _write_atomically(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o644)  # mkstemp's 0600 would hide the cache from others
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def ensure_prepared(spec: ModelSpec) -> Path:
    """Return the verified prepared file, preparing it from the shipped one if needed."""
    target = cached_path(spec)
    with _lock:
        if target in _verified and target.is_file():
            return target
        if target.is_file():
            if sha256_file(target) == spec.prepared_sha256:
                _verified.add(target)
                return target
            target.unlink(missing_ok=True)  # corrupt cache entry: rebuild it
        shipped = verified_shipped(spec)
        data = prepare_bytes(spec.recipe, shipped)
        actual = hashlib.sha256(data).hexdigest()
        if actual != spec.prepared_sha256:
            raise ModelChecksumError(
                f"{target} (prepared from {shipped} by recipe {spec.recipe}, not written)",
                spec.prepared_sha256,
                actual,
            )
        _sweep_stale_tmp(target.parent)
        _write_atomically(target, data)
        check_sha256(target, spec.prepared_sha256)
        _verified.add(target)
        return target


def model_path(name: str, manifest: Manifest | None = None) -> Path:
    """Path of model `name`'s prepared ONNX file (prepared on first use)."""
    return ensure_prepared((manifest or load_manifest()).get(name))
