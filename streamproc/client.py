"""The boto3-style Python client: ``Client().detect_faces(Image={"Bytes": data})``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from streamproc.engine import Engine
from streamproc.settings import Settings

__all__ = ["Client"]


class Client:
    """Same method names, keyword arguments and response dicts as boto3's rekognition client.

    Methods come from the registered operations (built-in and third-party plugins),
    so ``dir(client)`` lists what this installation can do. Errors raise the classes
    of :mod:`streamproc.errors`, named like Rekognition's error codes.
    """

    def __init__(
        self,
        store: str | Path | None = None,
        *,
        region: str | None = None,
        account_id: str | None = None,
        threads: int | None = None,
    ) -> None:
        overrides: dict[str, Any] = {
            k: v
            for k, v in {
                "store": Path(store) if store is not None else None,
                "region": region,
                "account_id": account_id,
                "threads": threads,
            }.items()
            if v is not None
        }
        self._engine = Engine(Settings(**overrides))
        self._methods = {op.method_name: op.name for op in self._engine.operations.values()}

    @property
    def engine(self) -> Engine:
        return self._engine

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        """Call an operation by its Rekognition name (``"DetectFaces"``)."""
        return self._engine.call(operation, params)

    def __getattr__(self, name: str) -> Callable[..., dict[str, Any]]:
        methods = self.__dict__.get("_methods", {})
        if name not in methods:
            raise AttributeError(f"{type(self).__name__} has no operation {name!r}")
        operation = methods[name]

        def method(**params: Any) -> dict[str, Any]:
            return self._engine.call(operation, params)

        method.__name__ = name
        method.__doc__ = self._engine.operations[operation].summary
        return method

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *self._methods})

    def close(self) -> None:
        self._engine.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
