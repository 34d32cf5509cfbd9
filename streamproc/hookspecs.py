"""Hook specifications: how plugins extend streamproc.

Built-in operations are plugins too, registered through the same ``streamproc`` entry
point group a third-party package would use. Hooks are grouped by lifecycle; each is
prefixed ``streamproc_`` and documented here, the one place a plugin author reads.
Implementations are marked with :data:`streamproc.hookimpl`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from streamproc.operations import Operation

__all__ = ["hookspec", "hookimpl", "streamproc_register_operations"]

hookspec = pluggy.HookspecMarker("streamproc")
hookimpl = pluggy.HookimplMarker("streamproc")


# --- start-up: what the process can do --------------------------------------------------------


@hookspec
def streamproc_register_operations(register: Callable[[Operation], None]) -> None:
    """Offer Rekognition operations by calling ``register(Operation(...))`` for each.

    An operation names its Rekognition action (``"DetectFaces"``), its request and
    response shapes, and the function that answers a validated request given the
    shared :class:`~streamproc.operations.OperationContext`. Every front door (the
    Python client, the CLI, the NATS service, per-frame analysis) reaches operations
    only through this registry, so one registration serves them all. Registering a
    name twice is an error.
    """
