"""Collection commands with the AWS CLI's names and flags, plus ``index-faces --dir``."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamproc.cli.main import print_json
from streamproc.cli.operations import client_from_args, read_image
from streamproc.errors import InvalidParameterException, RekognitionError

__all__ = ["add_commands", "index_directory", "DirectorySummary"]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def _optional(args: argparse.Namespace, **names: str) -> dict[str, Any]:
    """Rekognition parameters for the flags the user gave."""
    return {
        param: getattr(args, attr)
        for param, attr in names.items()
        if getattr(args, attr) is not None
    }


def _create(args: argparse.Namespace) -> int:
    print_json(client_from_args(args).create_collection(CollectionId=args.collection_id))
    return 0


def _delete(args: argparse.Namespace) -> int:
    print_json(client_from_args(args).delete_collection(CollectionId=args.collection_id))
    return 0


def _list(args: argparse.Namespace) -> int:
    params = _optional(args, MaxResults="max_results", NextToken="next_token")
    print_json(client_from_args(args).list_collections(**params))
    return 0


def _list_faces(args: argparse.Namespace) -> int:
    params = _optional(args, MaxResults="max_results", NextToken="next_token")
    print_json(client_from_args(args).list_faces(CollectionId=args.collection_id, **params))
    return 0


def _delete_faces(args: argparse.Namespace) -> int:
    print_json(
        client_from_args(args).delete_faces(CollectionId=args.collection_id, FaceIds=args.face_ids)
    )
    return 0


def _search_faces(args: argparse.Namespace) -> int:
    params = _optional(args, MaxFaces="max_faces", FaceMatchThreshold="face_match_threshold")
    print_json(
        client_from_args(args).search_faces(
            CollectionId=args.collection_id, FaceId=args.face_id, **params
        )
    )
    return 0


def _search_by_image(args: argparse.Namespace) -> int:
    params = _optional(args, MaxFaces="max_faces", FaceMatchThreshold="face_match_threshold")
    print_json(
        client_from_args(args).search_faces_by_image(
            CollectionId=args.collection_id, Image=read_image(args.image), **params
        )
    )
    return 0


@dataclass
class DirectorySummary:
    images: int = 0
    faces: int = 0
    people: set[str] = field(default_factory=set)
    without_faces: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def external_id_for(folder: str) -> str:
    """A folder name as an ExternalImageId (``[a-zA-Z0-9_.\\-:]+``): other characters → ``_``."""
    cleaned = re.sub(r"[^a-zA-Z0-9_.\-:]", "_", folder)[:255]
    if not cleaned.strip("_"):
        raise InvalidParameterException(f"folder name {folder!r} gives no usable ExternalImageId")
    return cleaned


def index_directory(
    client: Any, collection_id: str, root: Path, *, progress: bool = True
) -> DirectorySummary:
    """Index ``root/<person>/*.jpg``: the largest face of each photo, named after its folder."""
    from rich.progress import Progress

    if not root.is_dir():
        raise InvalidParameterException(f"--dir {root} is not a directory")
    photos = sorted(
        p for p in root.glob("*/*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not photos:
        raise InvalidParameterException(f"--dir {root} holds no <person>/<photo>.jpg|png files")
    summary = DirectorySummary()
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("indexing", total=len(photos))
        for photo in photos:
            person = external_id_for(photo.parent.name)
            name = str(photo.relative_to(root))
            try:
                response = client.index_faces(
                    CollectionId=collection_id,
                    Image=read_image(str(photo)),
                    ExternalImageId=person,
                    MaxFaces=1,
                )
            except RekognitionError as exc:
                if exc.code == "ResourceNotFoundException":
                    raise
                summary.failed.append((name, f"{exc.code}: {exc.message}"))
            else:
                summary.images += 1
                if response["FaceRecords"]:
                    summary.faces += len(response["FaceRecords"])
                    summary.people.add(person)
                else:
                    summary.without_faces.append(name)
            bar.advance(task)
    return summary


def _index_faces(args: argparse.Namespace) -> int:
    client = client_from_args(args)
    if args.dir is not None:
        if args.image is not None or args.external_image_id is not None:
            raise InvalidParameterException(
                "--dir indexes a folder: leave out --image and "
                "--external-image-id (folder names are used)"
            )
        summary = index_directory(client, args.collection_id, Path(args.dir))
        print_json(
            {
                "CollectionId": args.collection_id,
                "ImagesIndexed": summary.images,
                "FacesIndexed": summary.faces,
                "People": sorted(summary.people),
                "ImagesWithoutFaces": summary.without_faces,
                "ImagesFailed": [{"Image": n, "Error": e} for n, e in summary.failed],
            }
        )
        return 0 if not summary.failed else 1
    if args.image is None:
        raise InvalidParameterException("index-faces needs --image PATH or --dir DIR")
    params = _optional(
        args,
        ExternalImageId="external_image_id",
        DetectionAttributes="detection_attributes",
        MaxFaces="max_faces",
    )
    print_json(
        client.index_faces(CollectionId=args.collection_id, Image=read_image(args.image), **params)
    )
    return 0


def add_commands(sub: Any) -> None:
    def cmd(name: str, help: str, handler: Any, collection: bool = True) -> Any:
        p = sub.add_parser(name, help=help)
        if collection:
            p.add_argument("--collection-id", required=True)
        p.set_defaults(handler=handler)
        return p

    cmd("create-collection", "create a face collection", _create)
    cmd("delete-collection", "delete a collection and its faces", _delete)
    p = cmd("list-collections", "list collection ids", _list, collection=False)
    p.add_argument("--max-results", type=int)
    p.add_argument("--next-token")

    p = cmd(
        "index-faces",
        "add the faces of an image (or a folder of people) to a collection",
        _index_faces,
    )
    p.add_argument("--image", help="JPEG or PNG file")
    p.add_argument("--external-image-id", help="your id for the image, e.g. the person's name")
    p.add_argument("--detection-attributes", nargs="+", metavar="{DEFAULT,ALL}")
    p.add_argument("--max-faces", type=int, help="index only the N largest faces (1-100)")
    p.add_argument(
        "--dir",
        help="folder of per-person subfolders: <dir>/<person>/*.jpg; "
        "indexes the largest face of each photo as ExternalImageId=<person>",
    )

    p = cmd("list-faces", "list the faces of a collection", _list_faces)
    p.add_argument("--max-results", type=int)
    p.add_argument("--next-token")
    p = cmd("delete-faces", "delete faces by id", _delete_faces)
    p.add_argument("--face-ids", nargs="+", required=True)
    p = cmd("search-faces", "search a collection for a stored face", _search_faces)
    p.add_argument("--face-id", required=True)
    p.add_argument("--max-faces", type=int)
    p.add_argument("--face-match-threshold", type=float)
    p = cmd(
        "search-faces-by-image",
        "search a collection for the largest face of an image",
        _search_by_image,
    )
    p.add_argument("--image", required=True, help="JPEG or PNG file")
    p.add_argument("--max-faces", type=int)
    p.add_argument("--face-match-threshold", type=float)
