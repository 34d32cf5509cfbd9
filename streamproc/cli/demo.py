"""``streamproc demo``: the door camera on embedded defaults, start to finish.

Indexes the bundled household photos into a fresh collection, streams the bundled door
clip as a camera through an embedded NATS server, prints the visitor events a subscriber
receives, and serves the web console on loopback while it runs. Run from a terminal it
replays the clip until Ctrl-C, so a new user can open the console, name an unknown visitor
and see the next pass announce that person; otherwise (``make demo`` in CI, ``--once``) it
ends when the clip does.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["add_commands", "default_examples_dir"]


def default_examples_dir() -> Path:
    """``examples/`` of the source checkout the package runs from."""
    return Path(__file__).resolve().parents[2] / "examples"


DEFAULT_PORT = 8080


def _free_port(preferred: int) -> int:
    """``preferred`` if nothing listens there, else 0 (any free port): the demo must start."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", preferred))
        except OSError:
            return 0
    return preferred


async def _door_camera(
    examples: Path, store: Path, console: Any, *, loop: bool, port: int
) -> int:
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
                    "loop": loop,
                    "operations": [
                        {
                            "operation": "SearchFacesByImage",
                            "CollectionId": "household",
                            "FaceMatchThreshold": 80,
                        }
                    ],
                }
            ],
            "http": {"enabled": True, "port": _free_port(port)},
        }
    )
    runtime = Runtime(deployment)
    await runtime.start()
    console.print(
        f"[bold]camera[/bold]: {examples / 'clips' / 'door.mp4'} as stream "
        f"front-door, 5 analysed fps; NATS at {runtime.nats_url}"
    )
    console.print(
        f"[bold]console[/bold]: http://127.0.0.1:{runtime.http_port}/console/ "
        + ("(the clip replays until Ctrl-C)" if loop else "(while the clip plays)")
    )
    if loop:
        signals = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signals.add_signal_handler(sig, runtime.stop)
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
        await runtime.run(until_done=not loop, close=False)
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
    skipped = (runner.stats.budget_skipped + runner.source.budget_skipped
               + runner.source.frames_skipped)
    console.print(
        f"[bold]done[/bold]: {frames} frame records, {len(received)} visitor events; "
        f"identified: {', '.join(people) or 'nobody'}; unknown visitors: {unknown}; "
        f"skipped frames {skipped}"
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from rich.console import Console

    logging.getLogger().setLevel(logging.WARNING)
    console = Console()
    examples = Path(args.examples)
    loop = args.loop if args.loop is not None else sys.stdin.isatty() and sys.stdout.isatty()
    with tempfile.TemporaryDirectory(prefix="streamproc-demo-") as tmp:
        store = Path(args.store) if args.store else Path(tmp) / "store"
        return asyncio.run(_door_camera(examples, store, console, loop=loop, port=args.port))


def add_commands(sub: Any) -> None:
    p = sub.add_parser("demo", help="the door-camera demo on embedded defaults")
    p.add_argument("--examples", default=str(default_examples_dir()), help="examples directory")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help="the console's port on 127.0.0.1 (default 8080; a free one if taken)")
    replay = p.add_mutually_exclusive_group()
    replay.add_argument("--loop", dest="loop", action="store_true", default=None,
                        help="replay the clip until Ctrl-C (the default in a terminal)")
    replay.add_argument("--once", dest="loop", action="store_false",
                        help="play the clip once and end (the default without a terminal)")
    p.set_defaults(handler=_demo)
