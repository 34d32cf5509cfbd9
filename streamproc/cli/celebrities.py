"""``celebrities build`` makes a catalog from a folder of named photos and ``celebrities
list`` shows the configured one (``recognize-celebrities`` and ``get-celebrity-info`` are
generated from the registry like every operation)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from streamproc.cli.main import print_json
from streamproc.errors import InvalidParameterException

__all__ = ["add_commands", "DEFAULT_OUTPUT"]

#: ``celebrities build`` writes here unless told otherwise (never over the bundled file).
DEFAULT_OUTPUT = "celebrities.json"


def _build(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import Progress

    from streamproc.celebrities.builder import build_catalog, scan_directory
    from streamproc.celebrities.catalog import CatalogError
    from streamproc.celebrities.loader import load_catalog, save_catalog
    from streamproc.faces import FaceAnalyzer

    root = Path(args.dir)
    try:
        base = load_catalog(args.extend) if args.extend is not None else None
        people = scan_directory(root)
        with Progress(console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("embedding", total=sum(len(p.photos) for p in people))
            report = build_catalog(
                people,
                FaceAnalyzer(threads=args.threads),
                source=str(root),
                progress=lambda name: bar.advance(task),
            )
        if not len(report.catalog):
            raise InvalidParameterException(f"{root}: no face was found in any photo")
        catalog = base.merged(report.catalog) if base is not None else report.catalog
    except CatalogError as exc:
        raise InvalidParameterException(str(exc)) from None
    output = save_catalog(catalog, args.output)
    print_json(
        {
            "Output": str(output),
            "Celebrities": [
                {"Id": c.id, "Name": c.name, "Faces": len(c.embeddings), "Urls": list(c.urls)}
                for c in report.catalog
            ],
            "CelebritiesInCatalog": len(catalog),
            "PhotosRead": report.photos,
            "PhotosWithoutFaces": report.without_faces,
            "PhotosFailed": [{"Photo": n, "Error": e} for n, e in report.failed],
            "PeopleLeftOut": report.left_out,
        }
    )
    return 0 if not (report.failed or report.left_out) else 1


def _list(args: argparse.Namespace) -> int:
    from streamproc.celebrities.catalog import CatalogError
    from streamproc.celebrities.loader import catalog_path, load_catalog

    path = Path(args.catalog) if args.catalog is not None else catalog_path()
    try:
        catalog = load_catalog(path)
    except CatalogError as exc:
        raise InvalidParameterException(str(exc)) from None
    print_json(
        {
            "Catalog": str(path),
            "Celebrities": [
                {"Id": c.id, "Name": c.name, "Faces": len(c.embeddings), "Urls": list(c.urls)}
                for c in catalog
            ],
        }
    )
    return 0


def add_commands(sub: Any) -> None:
    p = sub.add_parser("celebrities", help="celebrity catalog: build one from photos, list it")
    celeb_sub = p.add_subparsers(dest="celebrities_command", required=True, metavar="ACTION")
    b = celeb_sub.add_parser(
        "build",
        help="make a catalog from DIR/<Full Name>/*.jpg (+ optional urls.txt)",
        description="Embed the largest face of every photo of DIR/<Full Name>/; the folder "
        "name is the Name, a hash of it the Id, DIR/<Full Name>/urls.txt (one per line) the "
        "Urls. Use the result with STREAMPROC_CELEBRITIES=FILE.",
    )
    b.add_argument("dir", metavar="DIR", help="folder of per-person subfolders")
    b.add_argument(
        "--output",
        default=DEFAULT_OUTPUT,
        help=f"catalog file to write (default: ./{DEFAULT_OUTPUT})",
    )
    b.add_argument(
        "--extend",
        metavar="CATALOG",
        help="start from this catalog (e.g. the bundled one); people of DIR are "
        "added, or replace those with the same name",
    )
    b.set_defaults(handler=_build)
    ls = celeb_sub.add_parser("list", help="the celebrities of the configured catalog")
    ls.add_argument("--catalog", help="catalog file (default: $STREAMPROC_CELEBRITIES or bundled)")
    ls.set_defaults(handler=_list)
