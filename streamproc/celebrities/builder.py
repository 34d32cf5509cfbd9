"""Reference photos → catalog: the largest face of each photo, one embedding per photo.

A folder of people (``DIR/<Full Name>/*.jpg``, optional ``DIR/<Full Name>/urls.txt``)
is how users extend or replace the bundled catalog; the folder name is the Name and
its normalised hash the Id, so rebuilding keeps Ids stable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from streamproc.celebrities.catalog import Catalog, Celebrity, celebrity_id
from streamproc.errors import InvalidParameterException, RekognitionError
from streamproc.faces import FaceAnalyzer
from streamproc.images import decode_image

__all__ = [
    "IMAGE_SUFFIXES",
    "URLS_FILE",
    "PersonPhotos",
    "BuildReport",
    "read_urls",
    "scan_directory",
    "build_catalog",
    "build_from_directory",
]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
URLS_FILE = "urls.txt"


@dataclass(frozen=True)
class PersonPhotos:
    """One person's reference photos; ``sources`` are what the catalog records for them."""

    name: str
    photos: tuple[Path, ...]
    urls: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()


@dataclass
class BuildReport:
    catalog: Catalog
    photos: int = 0
    without_faces: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    #: People left out because none of their photos showed a face.
    left_out: list[str] = field(default_factory=list)


def read_urls(path: Path) -> tuple[str, ...]:
    """One URL per line; blank lines and ``#`` comments are skipped."""
    if not path.is_file():
        return ()
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return tuple(line for line in lines if line and not line.startswith("#"))


def scan_directory(root: Path) -> list[PersonPhotos]:
    """``root/<Full Name>/*.jpg|png`` (+ ``urls.txt``), people and photos in name order."""
    if not root.is_dir():
        raise InvalidParameterException(f"{root} is not a directory")
    people = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        photos = tuple(
            sorted(
                p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
        )
        if photos:
            people.append(
                PersonPhotos(
                    name=" ".join(folder.name.split()),
                    photos=photos,
                    urls=read_urls(folder / URLS_FILE),
                    sources=tuple(str(p.relative_to(root)) for p in photos),
                )
            )
    if not people:
        raise InvalidParameterException(f"{root} holds no <Full Name>/<photo>.jpg|png files")
    return people


def build_catalog(
    people: Iterable[PersonPhotos],
    analyzer: FaceAnalyzer,
    *,
    source: str = "",
    progress: Callable[[str], None] | None = None,
) -> BuildReport:
    """Embed the largest face of every photo; unreadable or faceless photos are reported."""
    celebrities = []
    report = BuildReport(catalog=Catalog([]))
    for person in people:
        vectors, kept = [], []
        sources = person.sources or tuple(str(p) for p in person.photos)
        for photo, name in zip(person.photos, sources, strict=True):
            if progress is not None:
                progress(name)
            report.photos += 1
            try:
                image = decode_image(photo.read_bytes())
            except RekognitionError as exc:
                report.failed.append((name, f"{exc.code}: {exc.message}"))
                continue
            except OSError as exc:
                report.failed.append((name, f"cannot read: {exc.strerror}"))
                continue
            faces = analyzer.analyze(image, embeddings=True, max_faces=1, mesh=False).faces
            if not faces or faces[0].embedding is None:
                report.without_faces.append(name)
                continue
            vectors.append(faces[0].embedding)
            kept.append(name)
        if not vectors:
            report.left_out.append(person.name)
            continue
        celebrities.append(
            Celebrity(
                id=celebrity_id(person.name),
                name=person.name,
                urls=person.urls,
                embeddings=np.stack(vectors),
                sources=tuple(kept),
            )
        )
    report.catalog = Catalog(celebrities, source=source)
    return report


def build_from_directory(
    root: Path, analyzer: FaceAnalyzer, *, progress: Callable[[str], None] | None = None
) -> BuildReport:
    return build_catalog(scan_directory(root), analyzer, source=str(root), progress=progress)
