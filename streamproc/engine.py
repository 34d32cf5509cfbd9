"""One implementation per operation, many front doors.

The engine owns the operation registry (filled by plugins) and the shared context,
validates requests into their shapes, and turns every failure into a Rekognition
error. The Python client, the CLI and the NATS service all call :meth:`Engine.call`.
"""

from __future__ import annotations

import logging
from typing import Any

import pluggy
from pydantic import ValidationError

from streamproc.errors import (
    AccessDeniedException,
    InternalServerError,
    InvalidParameterException,
    RekognitionError,
)
from streamproc.operations import Operation, OperationContext
from streamproc.plugin_manager import create_plugin_manager
from streamproc.settings import Settings
from streamproc.shapes import Shape

__all__ = ["Engine", "validation_message"]

log = logging.getLogger(__name__)


def validation_message(operation: str, exc: ValidationError) -> str:
    """A pydantic error as a Rekognition-style message naming each bad parameter."""
    parts = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"]) or "request"
        if err["type"] == "extra_forbidden":
            parts.append(f"Unknown parameter {path}")
            continue
        if err["type"] == "missing":
            parts.append(f"Missing required parameter {path}")
            continue
        value = err.get("input")
        shown = repr(value)
        if isinstance(value, bytes | bytearray):
            shown = f"<{len(value)} bytes>"
        elif len(shown) > 80:
            shown = shown[:77] + "..."
        parts.append(f"{path}: {err['msg']} (got {shown})")
    return f"{operation}: " + "; ".join(parts)


def collect_operations(plugin_manager: pluggy.PluginManager) -> dict[str, Operation]:
    """Every operation the plugins register; a name registered twice is an error."""
    operations: dict[str, Operation] = {}

    def register(operation: Operation) -> None:
        if operation.name in operations:
            raise ValueError(f"operation {operation.name} is registered twice")
        operations[operation.name] = operation

    plugin_manager.hook.streamproc_register_operations(register=register)
    return operations


def registered_operations() -> dict[str, Operation]:
    """The installed operations, without an engine (no store, no models): for the CLI."""
    return collect_operations(create_plugin_manager())


class Engine:
    """Registered operations plus the context they share."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        plugin_manager: pluggy.PluginManager | None = None,
    ) -> None:
        self.plugin_manager = plugin_manager or create_plugin_manager()
        self.context = OperationContext(settings)
        self.operations = collect_operations(self.plugin_manager)

    def operation(self, name: str) -> Operation:
        try:
            return self.operations[name]
        except KeyError:
            raise InvalidParameterException(
                f"Unknown operation {name!r}; known: {', '.join(sorted(self.operations))}"
            ) from None

    def validate(self, name: str, params: dict[str, Any]) -> Any:
        operation = self.operation(name)
        try:
            return operation.request.model_validate(params)
        except ValidationError as exc:
            raise InvalidParameterException(validation_message(name, exc)) from None

    def run(self, name: str, request: Any) -> Shape:
        """Answer an already validated request; unexpected failures become InternalServerError."""
        from streamproc.store import ReplicaStoreError

        operation = self.operation(name)
        try:
            with self.context.request_scope():
                return operation.handler(request, self.context)
        except RekognitionError:
            raise
        except ReplicaStoreError as exc:  # a write to a cluster node's store, not through it
            raise AccessDeniedException(f"{name}: {exc}") from None
        except ValidationError as exc:
            raise InvalidParameterException(validation_message(name, exc)) from None
        except Exception as exc:
            log.exception("%s failed", name)
            raise InternalServerError(f"{name} failed: {type(exc).__name__}: {exc}") from exc

    def call(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        """Validate, run and return the response as boto3 would (a plain dict)."""
        return self.run(name, self.validate(name, params)).to_wire()

    def close(self) -> None:
        self.context.close()
