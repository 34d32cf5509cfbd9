"""Check responses against the AWS SDK's own Rekognition service model (botocore).

botocore ships the JSON model real clients are generated from: member names, enum
values (``Male``, ``eyeLeft``, ``ROTATE_0``), types and ranges. A response that passes
here is one boto3-based client code can read.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import botocore.session
from botocore.model import Shape

__all__ = ["assert_valid_response"]


@cache
def _service() -> Any:
    return botocore.session.get_session().get_service_model("rekognition")


def _check(value: Any, shape: Shape, path: str) -> None:
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(value, dict), f"{path}: expected an object, got {type(value).__name__}"
        for key, item in value.items():
            assert key in shape.members, f"{path}.{key}: not a member of {shape.name}"
            _check(item, shape.members[key], f"{path}.{key}")
        for required in shape.required_members:
            assert required in value, f"{path}: missing required {required}"
    elif kind == "list":
        assert isinstance(value, list), f"{path}: expected a list"
        for i, item in enumerate(value):
            _check(item, shape.member, f"{path}[{i}]")
    elif kind == "string":
        assert isinstance(value, str), f"{path}: expected a string, got {value!r}"
        if shape.enum:
            assert value in shape.enum, f"{path}: {value!r} not in {shape.enum}"
    elif kind in ("float", "double"):
        assert isinstance(value, int | float) and not isinstance(value, bool), f"{path}: {value!r}"
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None:
            assert value >= low, f"{path}: {value} < {low}"
        if high is not None:
            assert value <= high, f"{path}: {value} > {high}"
    elif kind in ("integer", "long"):
        assert isinstance(value, int) and not isinstance(value, bool), f"{path}: {value!r}"
        if (low := shape.metadata.get("min")) is not None:
            assert value >= low, f"{path}: {value} < {low}"
    elif kind == "boolean":
        assert isinstance(value, bool), f"{path}: {value!r}"
    elif kind == "blob":
        assert isinstance(value, bytes), f"{path}: {value!r}"


def assert_valid_response(operation: str, response: dict[str, Any]) -> None:
    """Every key, type, enum and range of ``response`` as botocore's model allows
    (``ResponseMetadata``, which boto3 adds to every response, is not in the model)."""
    body = {k: v for k, v in response.items() if k != "ResponseMetadata"}
    _check(body, _service().operation_model(operation).output_shape, operation)
