"""``streamproc demo``: the door camera on embedded defaults, start to finish.

Indexes the bundled household photos into a fresh collection, streams the bundled door
clip as a camera through an embedded NATS server, and prints the visitor events a
subscriber receives; it ends when the clip does.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["add_commands", "default_examples_dir"]


def default_examples_dir() -> Path:
    """``examples/`` of the source checkout the package runs from."""
    return Path(__file__).resolve().parents[2] / "examples"


async def _door_camera(examples: Path, store: Path, console: Any) -> int:
    import nats

    from streamproc.cli.collections import index_directory
    from streamproc.client import Client
    from streamproc.runtime.deployment import parse_deployment
    from streamproc.runtime.events import describe_event
    from streamproc.runtime.runtime import Runtime
    from streamproc.transport.codec import detect_codec

    client = Client(store=store)
    client.create_collection(CollectionId="household")
    summary = index_directory(client, "household", examples / "household", progress=False)
    console.print(
        f"[bold]household[/bold]: indexed {summary.faces} faces of "
        f"{', '.join(sorted(summary.people))}"
    )
    client.close()

    deployment = parse_deployment(
        {
            "store": str(store),
            "streams": [
                {
                    "id": "front-door",
                    "url": str(examples / "clips" / "door.mp4"),
                    "fps": 5,
                    "realtime": True,
                    "operations": [
                        {
                            "operation": "SearchFacesByImage",
                            "CollectionId": "household",
                            "FaceMatchThreshold": 80,
                        }
                    ],
                }
            ],
        }
    )
    runtime = Runtime(deployment)
    await runtime.start()
    console.print(
        f"[bold]camera[/bold]: {examples / 'clips' / 'door.mp4'} as stream "
        f"front-door, 5 analysed fps; NATS at {runtime.nats_url}"
    )
    received: list[dict[str, Any]] = []
    frames = 0

    async def on_event(msg: Any) -> None:
        event = detect_codec(msg.data, msg.headers).decode(msg.data)
        received.append(event)
        offset = float(event.get("FrameOffsetInSeconds", 0.0))
        console.print(f"  [green]{offset:5.1f} s[/green] {describe_event(event)}")

    async def on_frame(msg: Any) -> None:
        nonlocal frames
        frames += 1

    runner = runtime.streams["front-door"]
    try:
        nc = await nats.connect(runtime.nats_url)
        await nc.subscribe("streamproc.front-door.events", cb=on_event)
        await nc.subscribe("streamproc.front-door.frames", cb=on_frame)
        await nc.flush()
        await runtime.run(until_done=True, close=False)
        await nc.flush()
        await asyncio.sleep(0.2)
        await nc.drain()
    finally:
        await runtime.close()
    named: dict[str, str] = {}  # the latest decision per visit: revisions replace it
    for e in received:
        if e.get("EventType") == "VisitorIdentified":
            named[str(e["VisitorId"])] = (
                str(e.get("ExternalImageId")) if e.get("Matched") else "unknown"
            )
    people = sorted({n for n in named.values() if n != "unknown"})
    unknown = sum(1 for n in named.values() if n == "unknown")
    console.print(
        f"[bold]done[/bold]: {frames} frame records, {len(received)} visitor events; "
        f"identified: {', '.join(people) or 'nobody'}; unknown visitors: {unknown}; "
        f"skipped frames {runner.stats.budget_skipped + runner.source.frames_skipped}"
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from rich.console import Console

    logging.getLogger().setLevel(logging.WARNING)
    console = Console()
    examples = Path(args.examples)
    with tempfile.TemporaryDirectory(prefix="streamproc-demo-") as tmp:
        store = Path(args.store) if args.store else Path(tmp) / "store"
        return asyncio.run(_door_camera(examples, store, console))


def add_commands(sub: Any) -> None:
    p = sub.add_parser("demo", help="the door-camera demo on embedded defaults")
    p.add_argument("--examples", default=str(default_examples_dir()), help="examples directory")
    p.set_defaults(handler=_demo)
