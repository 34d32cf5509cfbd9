"""``index-faces --dir``: index a folder of people (the collection commands themselves are
generated from the registry by :mod:`streamproc.cli.operations`)."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamproc.cli.main import print_json
from streamproc.cli.operations import EXTENSIONS, client_from_args, read_image
from streamproc.errors import InvalidParameterException, RekognitionError

__all__ = ["extend_index_faces", "index_directory", "DirectorySummary"]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


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
    if args.dir is None:
        return args.index_one(args)  # the generated command: --image and the other flags
    if args.Image is not None or args.Image__bytes is not None or args.ExternalImageId:
        raise InvalidParameterException(
            "--dir indexes a folder: leave out --image and --external-image-id "
            "(folder names are used)"
        )
    summary = index_directory(client, args.CollectionId, Path(args.dir))
    print_json(
        {
            "CollectionId": args.CollectionId,
            "ImagesIndexed": summary.images,
            "FacesIndexed": summary.faces,
            "People": sorted(summary.people),
            "ImagesWithoutFaces": summary.without_faces,
            "ImagesFailed": [{"Image": n, "Error": e} for n, e in summary.failed],
        }
    )
    return 0 if not summary.failed else 1


def extend_index_faces(parser: argparse.ArgumentParser) -> None:
    """``index-faces --dir DIR``: index a folder of people, one ExternalImageId per folder."""
    parser.add_argument(
        "--dir",
        help="folder of per-person subfolders: <dir>/<person>/*.jpg; "
        "indexes the largest face of each photo as ExternalImageId=<person>",
    )
    parser.set_defaults(index_one=parser.get_default("handler"), handler=_index_faces)


EXTENSIONS["index-faces"] = extend_index_faces
