"""The boto3-style Python client: ``Client().detect_faces(Image={"Bytes": data})``."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from streamproc.engine import Engine
from streamproc.errors import ERRORS, RekognitionError
from streamproc.settings import Settings

__all__ = ["Client", "Paginator"]

#: boto3's paginators for Rekognition's 2017 operations (method name → result key).
_PAGINATED = {"list_collections": "CollectionIds", "list_faces": "Faces"}


class _Exceptions:
    """Every Rekognition error class by name, plus ``ClientError`` for all of them."""

    ClientError = RekognitionError

    def __getattr__(self, name: str) -> type[RekognitionError]:
        try:
            return ERRORS[name]
        except KeyError:
            raise AttributeError(f"no Rekognition error named {name!r}") from None

    def __dir__(self) -> list[str]:
        return sorted({"ClientError", *ERRORS})


class Paginator:
    """boto3's paginator protocol: ``paginate(**params)`` yields each page in turn."""

    def __init__(self, client: Client, operation: str) -> None:
        self._client = client
        self._operation = operation

    def paginate(self, **params: Any) -> Iterator[dict[str, Any]]:
        config = params.pop("PaginationConfig", {}) or {}
        if config.get("PageSize") is not None:
            params["MaxResults"] = config["PageSize"]
        if config.get("StartingToken") is not None:
            params["NextToken"] = config["StartingToken"]
        while True:
            page = self._client.call(self._operation, **params)
            yield page
            token = page.get("NextToken")
            if not token:
                return
            params["NextToken"] = token


class Client:
    """Same method names, keyword arguments and response dicts as boto3's rekognition client.

    Methods come from the registered operations (built-in and third-party plugins),
    so ``dir(client)`` lists what this installation can do. Errors raise the classes
    of :mod:`streamproc.errors`, named like Rekognition's error codes. ``buckets`` says
    where ``Image.S3Object`` is read from (as ``STREAMPROC_BUCKETS`` does), e.g.
    ``{"photos": {"path": "/srv/photos"}}``.
    """

    def __init__(
        self,
        store: str | Path | None = None,
        *,
        region: str | None = None,
        account_id: str | None = None,
        threads: int | None = None,
        buckets: Mapping[str, Any] | None = None,
    ) -> None:
        overrides: dict[str, Any] = {
            k: v
            for k, v in {
                "store": Path(store) if store is not None else None,
                "region": region,
                "account_id": account_id,
                "threads": threads,
                "buckets": dict(buckets) if buckets is not None else None,
            }.items()
            if v is not None
        }
        self._engine = Engine(Settings(**overrides))
        self._methods = {op.method_name: op.name for op in self._engine.operations.values()}

    @property
    def engine(self) -> Engine:
        return self._engine

    #: ``client.exceptions.ResourceNotFoundException``, as boto3 offers them.
    exceptions = _Exceptions()

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        """Call an operation by its Rekognition name (``"DetectFaces"``).

        The response carries boto3's ``ResponseMetadata``; an error is raised with
        boto3's ``response`` dict and ``operation_name``.
        """
        try:
            response = self._engine.call(operation, params)
        except RekognitionError as err:
            err.operation_name = operation
            raise
        response["ResponseMetadata"] = {
            "RequestId": str(uuid.uuid4()),
            "HTTPStatusCode": 200,
            "HTTPHeaders": {},
            "RetryAttempts": 0,
        }
        return response

    def can_paginate(self, operation_name: str) -> bool:
        return operation_name in _PAGINATED

    def get_paginator(self, operation_name: str) -> Paginator:
        """``client.get_paginator("list_faces").paginate(CollectionId="c")`` yields pages."""
        if operation_name not in _PAGINATED:
            raise ValueError(
                f"{operation_name} cannot be paginated; these can: {', '.join(sorted(_PAGINATED))}"
            )
        return Paginator(self, self._methods[operation_name])

    def __getattr__(self, name: str) -> Callable[..., dict[str, Any]]:
        methods = self.__dict__.get("_methods", {})
        if name not in methods:
            raise AttributeError(f"{type(self).__name__} has no operation {name!r}")
        operation = methods[name]

        def method(**params: Any) -> dict[str, Any]:
            return self.call(operation, **params)

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
