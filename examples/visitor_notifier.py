"""Print "alice is at front-door (similarity 97.2)" for the visitor events of any deployment.

    python examples/visitor_notifier.py nats://127.0.0.1:4222 [--snapshots DIR]

Subscribes to ``streamproc.*.events`` (msgpack or JSON, told apart by the Content-Type
header), prints one line per event and, with ``--snapshots``, saves the face snapshot
of each identification as a JPEG. A visit's identity can be revised (an unknown visitor
named once close enough, a name corrected): a revision prints as an update ("Update: the
visitor at front-door is alice, not unknown") and its snapshot is saved beside the first
one (``<visitor>-1.jpg``). A few lines of code to turn into a phone notification.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from pathlib import Path

import nats

from streamproc.runtime.events import describe_event
from streamproc.transport.codec import detect_codec


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", default="nats://127.0.0.1:4222")
    parser.add_argument("--stream", default="*", help="stream id (default: all streams)")
    parser.add_argument("--snapshots", type=Path, help="save identification snapshots here")
    args = parser.parse_args()
    nc = await nats.connect(args.url, max_reconnect_attempts=-1)

    async def on_event(msg: nats.aio.msg.Msg) -> None:
        event = detect_codec(msg.data, msg.headers).decode(msg.data)
        print(describe_event(event), flush=True)
        if (
            args.snapshots
            and event.get("EventType") == "VisitorIdentified"
            and event.get("Snapshot")
        ):
            args.snapshots.mkdir(parents=True, exist_ok=True)
            revision = event.get("Revision") or 0
            name = f"{event['VisitorId']}-{revision}" if revision else str(event["VisitorId"])
            (args.snapshots / f"{name}.jpg").write_bytes(event["Snapshot"])

    await nc.subscribe(f"streamproc.{args.stream}.events", cb=on_event)
    print(f"listening on {args.url} for streamproc.{args.stream}.events", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await nc.drain()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
