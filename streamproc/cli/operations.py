"""One command per registered operation, generated from its request shape.

Command and flag names are the AWS CLI's (``search-faces-by-image --collection-id ...
--face-match-threshold 90``), so scripts translate one-to-one, and a plugin's operation
appears here with no extra code. Images: ``--image photo.jpg`` (a local file, the
convenience users rely on), ``--image-bytes fileb://photo.jpg`` (the AWS CLI's spelling) or
``--image '{"S3Object": {"Bucket": "photos", "Name": "a.jpg"}}'``. Lists take several
values (``--face-ids ID ID``); nested structures take JSON. Commands may be extended (e.g.
``index-faces --dir``) through :data:`EXTENSIONS`.
"""

from __future__ import annotations

import argparse
import json
import re
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from streamproc.cli.main import print_json
from streamproc.errors import InvalidParameterException
from streamproc.operations import Operation

__all__ = ["EXTENSIONS", "add_commands", "client_from_args", "flag_name", "read_image"]

#: Request fields that are a Rekognition ``Image``.
IMAGE_FIELDS = ("Image", "SourceImage", "TargetImage")

#: Extra flags and behaviour for a generated command: ``EXTENSIONS["index-faces"](parser)``.
EXTENSIONS: dict[str, Callable[[argparse.ArgumentParser], None]] = {}


def flag_name(field: str) -> str:
    """``"FaceMatchThreshold"`` → ``"face-match-threshold"`` (the AWS CLI's flags)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", field).lower()


def read_image(path: str) -> dict[str, Any]:
    """A local file as a Rekognition ``Image``; a missing file is a parameter error."""
    try:
        return {"Bytes": Path(path).read_bytes()}
    except OSError as exc:
        raise InvalidParameterException(f"cannot read image file {path}: {exc.strerror}") from exc


def image_argument(value: str | None, raw_bytes: str | None, flag: str) -> dict[str, Any] | None:
    """``--image`` (a path or JSON) or ``--image-bytes fileb://path`` as an ``Image``."""
    if value is not None and raw_bytes is not None:
        raise InvalidParameterException(f"give --{flag} or --{flag}-bytes, not both")
    if raw_bytes is not None:
        return read_image(raw_bytes.removeprefix("fileb://"))
    if value is None:
        return None
    if value.lstrip().startswith("{"):
        parsed = _json(value, flag)
        if not isinstance(parsed, dict):
            raise InvalidParameterException(f"--{flag} JSON must be an object")
        return parsed
    return read_image(value)


def client_from_args(args: argparse.Namespace) -> Any:
    from streamproc.client import Client

    return Client(store=args.store, threads=args.threads)


def _json(value: str, flag: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise InvalidParameterException(f"--{flag} is not valid JSON: {exc}") from None


def _unwrap(annotation: Any) -> Any:
    """``int | None`` → ``int``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _add_field(parser: argparse.ArgumentParser, name: str, annotation: Any, required: bool,
               description: str | None) -> None:
    flag = flag_name(name)
    kind = _unwrap(annotation)
    origin = typing.get_origin(kind)
    if name in IMAGE_FIELDS:
        parser.add_argument(f"--{flag}", dest=name,
                            help="JPEG or PNG file, or JSON such as '{\"S3Object\": {...}}'")
        parser.add_argument(f"--{flag}-bytes", dest=f"{name}__bytes", metavar="fileb://FILE",
                            help="the image file, as the AWS CLI spells it")
        return
    options: dict[str, Any] = {
        "dest": name, "required": required, "help": description,
        "metavar": flag.upper().replace("-", "_"),
    }
    if origin is list:
        (item,) = typing.get_args(kind) or (str,)
        item = _unwrap(item)
        if typing.get_origin(item) is Literal:  # validated by the API: the same error anywhere
            options["metavar"] = "{" + ",".join(map(str, typing.get_args(item))) + "}"
        options["nargs"] = "+"
        if item in (int, float):
            options["type"] = item
    elif origin is Literal:
        options["metavar"] = "{" + ",".join(map(str, typing.get_args(kind))) + "}"
    elif kind in (int, float):
        options["type"] = kind
    elif kind is bool:
        options["type"] = lambda v: v.lower() in ("1", "true", "yes")
    elif isinstance(kind, type) and issubclass(kind, BaseModel):
        options.update(type=lambda v, f=flag: _json(v, f), metavar="JSON")
    parser.add_argument(f"--{flag}", **options)


def params_from_args(operation: Operation, args: argparse.Namespace) -> dict[str, Any]:
    """The request parameters for the flags the user gave."""
    params: dict[str, Any] = {}
    for name, info in operation.request.model_fields.items():
        if name in IMAGE_FIELDS:
            image = image_argument(getattr(args, name, None),
                                   getattr(args, f"{name}__bytes", None), flag_name(name))
            if image is not None:
                params[name] = image
            elif info.is_required():
                flag = flag_name(name)
                raise InvalidParameterException(
                    f"{operation.cli_name} needs --{flag} FILE or --{flag}-bytes fileb://FILE"
                )
        elif getattr(args, name, None) is not None:
            params[name] = getattr(args, name)
    return params


def _runner(operation: Operation) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        params = params_from_args(operation, args)
        print_json(client_from_args(args).call(operation.name, **params))
        return 0

    return run


def add_commands(sub: Any, operations: dict[str, Operation] | None = None) -> None:
    """A subcommand for every registered operation (and its extension, if any)."""
    if operations is None:
        from streamproc.engine import registered_operations

        operations = registered_operations()
    from streamproc.cli import collections  # noqa: F401  (registers its extensions)

    for operation in sorted(operations.values(), key=lambda op: op.cli_name):
        p = sub.add_parser(operation.cli_name, help=operation.summary or operation.name,
                           description=operation.summary)
        for name, info in operation.request.model_fields.items():
            _add_field(p, name, info.annotation, info.is_required(), info.description)
        p.set_defaults(handler=_runner(operation), operation=operation)
        if operation.cli_name in EXTENSIONS:
            EXTENSIONS[operation.cli_name](p)
