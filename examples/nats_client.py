"""Call streamproc's Rekognition API over NATS, and watch published results.

    python examples/nats_client.py photo.jpg                  # embedded server + service
    python examples/nats_client.py photo.jpg --url nats://host:4222   # a running service
    python examples/nats_client.py photo.jpg --bench 200      # latency vs direct engine.call

Without ``--url`` the script starts an embedded nats-server and serves the local engine on
it, so it runs on its own. Any NATS client can do the same: send the Rekognition request in
msgpack (or JSON, with the image base64) to ``rekognition.DetectFaces`` and read the reply;
an error reply carries ``{"Error": {"Code": ..., "Message": ...}}``. Requests are limited by
the server's max_payload (1 MiB unless its config says e.g. ``max_payload: 8MB``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import nats

from streamproc.client import Client
from streamproc.errors import RekognitionError
from streamproc.transport import EmbeddedNatsServer
from streamproc.transport.codec import Codec
from streamproc.transport.publisher import Publisher, events_subject
from streamproc.transport.service import RekognitionService, RemoteClient


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"p50 {p50 * 1e3:7.2f} ms   p99 {p99 * 1e3:7.2f} ms   (n={len(ordered)})"


async def _bench(
    remote: RemoteClient, client: Client | None, params: dict[str, Any], n: int
) -> None:
    for _ in range(3):  # warm-up: models load on first use
        await remote.call("DetectFaces", params)
    over_nats: list[float] = []
    direct: list[float] = []
    for _ in range(n):  # interleaved, so both see the same machine load
        t0 = time.perf_counter()
        await remote.call("DetectFaces", params)
        over_nats.append(time.perf_counter() - t0)
        if client is not None:
            t0 = time.perf_counter()
            await asyncio.to_thread(client.engine.call, "DetectFaces", params)
            direct.append(time.perf_counter() - t0)
    print(f"DetectFaces over NATS ({remote.codec.name:7}) {_percentiles(over_nats)}")
    if direct:
        print(f"DetectFaces engine.call direct    {_percentiles(direct)}")


async def _publish_rate(url: str, codec: str, count: int = 20000) -> None:
    record = {"StreamId": "bench", "Frame": 0, "FaceSearchResponse": [], "Pad": "x" * 900}
    received = 0
    done = asyncio.Event()
    sub_nc = await nats.connect(url)

    async def on_msg(_: Any) -> None:
        nonlocal received
        received += 1
        if received == count:
            done.set()

    await sub_nc.subscribe("streamproc.bench.>", cb=on_msg, pending_msgs_limit=count * 2)
    await sub_nc.flush()
    await sub_nc.flush()
    async with Publisher(url, codec=codec) as pub:
        t0 = time.perf_counter()
        for i in range(count):
            record["Frame"] = i
            await pub.publish(events_subject("bench"), record)
        await pub.nc.flush()
        sent = time.perf_counter() - t0
        await asyncio.wait_for(done.wait(), 30)
        got = time.perf_counter() - t0
    await sub_nc.close()
    size = len(Codec(codec).encode(record))
    print(
        f"publish {codec:7} {size} B: {count / sent:8.0f} msg/s sent, "
        f"{count / got:8.0f} msg/s received by a subscriber"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", type=Path)
    parser.add_argument("--url", help="NATS server with a running streamproc service")
    parser.add_argument("--codec", choices=["msgpack", "json"], default="msgpack")
    parser.add_argument("--bench", type=int, default=0, help="requests to time")
    args = parser.parse_args()
    params = {"Image": {"Bytes": args.image.read_bytes()}, "Attributes": ["ALL"]}

    async with AsyncExitStack() as stack:
        client: Client | None = None
        url = args.url
        if url is None:
            server = await stack.enter_async_context(EmbeddedNatsServer())
            url = server.url
            client = stack.enter_context(Client(store=tempfile.mkdtemp(prefix="streamproc-")))
        nc = await nats.connect(url)
        stack.push_async_callback(nc.close)
        if client is not None:
            service = RekognitionService(client.engine)
            await service.start(nc)
            stack.push_async_callback(service.stop)

        remote = RemoteClient(nc, codec=args.codec)
        try:
            response = await remote.call("DetectFaces", params)
        except RekognitionError as err:
            print(f"An error occurred ({err.code}): {err.message}")
            return
        print(json.dumps(response, indent=2)[:2000])
        if args.bench:
            await _bench(remote, client, params, args.bench)
            await _bench(RemoteClient(nc, codec="json"), None, params, args.bench)
            for codec in ("msgpack", "json"):
                await _publish_rate(url, codec)


if __name__ == "__main__":
    asyncio.run(main())
