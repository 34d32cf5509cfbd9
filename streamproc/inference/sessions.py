"""onnxruntime sessions for the manifest's models, shared per process.

A session costs memory and start-up time, so one is kept per (model, threads).
Spinning thread pools are turned off: a streaming service runs a few inferences a
second and spinning would burn a core between them.
"""

from __future__ import annotations

import threading

import onnxruntime as ort

from streamproc.settings import THREADS_ENV, Settings

from .cache import ensure_prepared
from .manifest import Manifest, load_manifest

__all__ = ["THREADS_ENV", "clear_sessions", "get_session", "resolve_threads"]


_lock = threading.Lock()
_sessions: dict[tuple[str, int, str, str], ort.InferenceSession] = {}


def resolve_threads(threads: int | None = None) -> int:
    """Explicit value, else ``$STREAMPROC_THREADS``, else 0 (onnxruntime's default)."""
    if threads is None:
        threads = Settings.default("threads")
        if threads is None:
            return 0
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    return threads


def _options(threads: int) -> ort.SessionOptions:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    so.log_severity_level = 3
    return so


def get_session(
    name: str, threads: int | None = None, *, manifest: Manifest | None = None
) -> ort.InferenceSession:
    """The shared CPU session for model `name`, preparing the model on first use."""
    spec = (manifest or load_manifest()).get(name)
    n = resolve_threads(threads)
    with _lock:
        path = ensure_prepared(spec)
        key = (name, n, spec.prepared_sha256, str(path))
        session = _sessions.get(key)
        if session is None:
            session = ort.InferenceSession(
                str(path), _options(n), providers=["CPUExecutionProvider"]
            )
            _sessions[key] = session
        return session


def clear_sessions() -> None:
    """Drop cached sessions (tests, or to free memory after a reconfiguration)."""
    with _lock:
        _sessions.clear()
