"""Rekognition operations with the AWS CLI's command and flag names.

Images are local files (``--image photo.jpg``) rather than the AWS CLI's S3 objects;
everything else keeps the AWS CLI's spelling so scripts translate one-to-one.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from streamproc.cli.main import print_json
from streamproc.errors import InvalidParameterException

__all__ = ["add_commands", "read_image", "client_from_args"]


def read_image(path: str) -> dict[str, Any]:
    """A local file as a Rekognition ``Image``; a missing file is a parameter error."""
    try:
        return {"Bytes": Path(path).read_bytes()}
    except OSError as exc:
        raise InvalidParameterException(f"cannot read image file {path}: {exc.strerror}") from exc


def client_from_args(args: argparse.Namespace) -> Any:
    from streamproc.client import Client

    return Client(store=args.store, threads=args.threads)


def _detect_faces(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"Image": read_image(args.image)}
    if args.attributes:
        params["Attributes"] = args.attributes
    print_json(client_from_args(args).detect_faces(**params))
    return 0


def _compare_faces(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {
        "SourceImage": read_image(args.source_image),
        "TargetImage": read_image(args.target_image),
    }
    if args.similarity_threshold is not None:
        params["SimilarityThreshold"] = args.similarity_threshold
    print_json(client_from_args(args).compare_faces(**params))
    return 0


def _detect_moderation_labels(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"Image": read_image(args.image)}
    if args.min_confidence is not None:
        params["MinConfidence"] = args.min_confidence
    print_json(client_from_args(args).detect_moderation_labels(**params))
    return 0


def _detect_labels(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"Image": read_image(args.image)}
    if args.max_labels is not None:
        params["MaxLabels"] = args.max_labels
    if args.min_confidence is not None:
        params["MinConfidence"] = args.min_confidence
    print_json(client_from_args(args).detect_labels(**params))
    return 0


def add_commands(sub: Any) -> None:
    p = sub.add_parser("detect-faces", help="detect faces and their attributes in an image")
    p.add_argument("--image", required=True, help="JPEG or PNG file")
    p.add_argument(
        "--attributes",
        nargs="+",
        metavar="{DEFAULT,ALL}",
        help="DEFAULT (box, landmarks, pose, quality) or ALL (adds age, gender, emotions, smile)",
    )
    p.set_defaults(handler=_detect_faces)

    p = sub.add_parser("compare-faces", help="compare the largest source face with target faces")
    p.add_argument("--source-image", required=True, help="JPEG or PNG file")
    p.add_argument("--target-image", required=True, help="JPEG or PNG file")
    p.add_argument("--similarity-threshold", type=float, help="0-100, default 80")
    p.set_defaults(handler=_compare_faces)

    p = sub.add_parser("detect-moderation-labels", help="unsafe-content labels of an image")
    p.add_argument("--image", required=True, help="JPEG or PNG file")
    p.add_argument("--min-confidence", type=float, help="0-100, default 50")
    p.set_defaults(handler=_detect_moderation_labels)

    p = sub.add_parser("detect-labels", help="objects, animals and concepts in an image")
    p.add_argument("--image", required=True, help="JPEG or PNG file")
    p.add_argument("--max-labels", type=int, help="at most N labels")
    p.add_argument("--min-confidence", type=float, help="0-100, default 50")
    p.set_defaults(handler=_detect_labels)
