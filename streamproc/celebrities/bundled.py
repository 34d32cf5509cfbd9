"""How the bundled catalog (``models/celebrities.json``) is made, so it can be rebuilt.

It covers the public figures of the shared test photos whose **full** names their sources
give (first-name-only or surname-only labels are left out), from only the first one or
two photos of each identity set: the other photos stay unseen for held-out tests. Urls
are empty rather than invented. Rebuild with::

    python -m streamproc.celebrities.bundled [DATA_DIR] [--output models/celebrities.json]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from streamproc.celebrities.builder import PersonPhotos, build_catalog
from streamproc.celebrities.loader import bundled_catalog_path, save_catalog
from streamproc.faces import FaceAnalyzer

__all__ = ["BUNDLED_PHOTOS", "bundled_people", "main"]

#: Name → reference photos, relative to the shared data folder (``tests/data`` holds a copy).
BUNDLED_PHOTOS: dict[str, tuple[str, ...]] = {
    "Alex Lacamoire": ("faces/alex_lacamoire/1.png",),
    "Barack Obama": ("faces/barack_obama/1.jpg", "faces/barack_obama/2.jpg"),
    "Joe Biden": ("faces/joe_biden/1.jpg",),
    "Kit Harington": ("faces/kit_harington/1.jpg",),
    "Rose Leslie": ("faces/rose_leslie/1.jpg",),
    "John Salley": ("faces/dlib_john_salley/1.jpg", "faces/dlib_john_salley/2.jpg"),
    "John Savage": ("faces/dlib_john_savage/1.jpg", "faces/dlib_john_savage/2.jpg"),
    "John Schneider": ("faces/dlib_john_schneider/1.jpg", "faces/dlib_john_schneider/2.jpg"),
    "John Shimkus": ("faces/dlib_john_shimkus/1.jpg", "faces/dlib_john_shimkus/2.jpg"),
    "John Simm": ("faces/dlib_john_simm/1.jpg", "faces/dlib_john_simm/2.jpg"),
    # faces_single/: one photo each, so these have no held-out photo.
    "Amy Adams": ("faces_single/openface_adams.jpg",),
    "Steve Carell": ("faces_single/openface_carell.jpg",),
    "Tom Cruise": ("faces_single/dlib_tom_cruise.jpg",),
    "Eileen Collins": ("faces_single/skimage_astronaut.png",),
}


def bundled_people(data_dir: Path) -> list[PersonPhotos]:
    return [
        PersonPhotos(name=name, photos=tuple(data_dir / p for p in paths), sources=paths)
        for name, paths in BUNDLED_PHOTOS.items()
    ]


def main(argv: Sequence[str] | None = None) -> int:
    repo = Path(__file__).resolve().parents[2]
    parser = argparse.ArgumentParser(description="Rebuild the bundled celebrity catalog.")
    parser.add_argument("data_dir", nargs="?", type=Path, default=repo / "tests" / "data")
    parser.add_argument("--output", type=Path, default=bundled_catalog_path())
    args = parser.parse_args(argv)
    report = build_catalog(bundled_people(args.data_dir), FaceAnalyzer(), source="bundled")
    problems = report.without_faces + [name for name, _ in report.failed] + report.left_out
    if problems:
        print(f"not built, problems with: {', '.join(problems)}", file=sys.stderr)
        return 1
    save_catalog(report.catalog, args.output)
    print(f"{args.output}: {len(report.catalog)} celebrities from {report.photos} photos")
    return 0


if __name__ == "__main__":
    sys.exit(main())
