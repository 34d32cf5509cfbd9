"""``streamproc demo``: the face operations on the bundled sample photos."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from streamproc.cli.operations import client_from_args, read_image

__all__ = ["add_commands", "default_examples_dir"]


def default_examples_dir() -> Path:
    """``examples/`` of the source checkout the package runs from."""
    return Path(__file__).resolve().parents[2] / "examples"


def _demo(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    examples = Path(args.examples)
    client = client_from_args(args)
    visitors = sorted((examples / "visitors").glob("*.jpg"))
    household = sorted((examples / "household").glob("*/*.jpg"))
    console.print(f"[bold]streamproc demo[/bold]: {len(household)} household photos, "
                  f"{len(visitors)} visitor photos from {examples}")

    for photo in visitors:
        start = time.perf_counter()
        response = client.detect_faces(Image=read_image(str(photo)), Attributes=["ALL"])
        elapsed = (time.perf_counter() - start) * 1000
        table = Table(title=f"DetectFaces ALL — {photo.name} ({elapsed:.0f} ms)")
        for column in ("box (L,T,W,H)", "conf", "age", "gender", "emotion", "smile", "pose R/Y/P"):
            table.add_column(column)
        for face in response["FaceDetails"]:
            box = face["BoundingBox"]
            emotion = face["Emotions"][0]
            pose = face["Pose"]
            table.add_row(
                f"{box['Left']:.2f},{box['Top']:.2f},{box['Width']:.2f},{box['Height']:.2f}",
                f"{face['Confidence']:.1f}",
                f"{face['AgeRange']['Low']}-{face['AgeRange']['High']}",
                f"{face['Gender']['Value']} {face['Gender']['Confidence']:.0f}",
                f"{emotion['Type']} {emotion['Confidence']:.0f}",
                str(face["Smile"]["Value"]),
                f"{pose['Roll']:.0f}/{pose['Yaw']:.0f}/{pose['Pitch']:.0f}",
            )
        console.print(table)

    table = Table(title="CompareFaces: household photo vs visitor photo (threshold 80)")
    for column in ("household", "visitor", "best similarity", "matches"):
        table.add_column(column)
    for known in household:
        for photo in visitors:
            response: dict[str, Any] = client.compare_faces(
                SourceImage=read_image(str(known)), TargetImage=read_image(str(photo))
            )
            matches = response["FaceMatches"]
            best = max((m["Similarity"] for m in matches), default=None)
            table.add_row(
                f"{known.parent.name}/{known.name}",
                photo.name,
                f"{best:.1f}" if best is not None else "-",
                str(len(matches)),
            )
    console.print(table)
    return 0


def add_commands(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the face operations on the bundled sample photos")
    p.add_argument("--examples", default=str(default_examples_dir()), help="examples directory")
    p.set_defaults(handler=_demo)
