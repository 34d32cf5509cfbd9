"""``streamproc serve``: the Rekognition HTTP API for AWS SDKs, the AWS CLI and Double Take."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_commands"]


async def _serve(args: argparse.Namespace) -> int:
    from streamproc.engine import Engine
    from streamproc.http.server import ApiServer
    from streamproc.settings import Settings

    overrides: dict[str, Any] = {}
    if args.store:
        overrides["store"] = Path(args.store)
    if args.threads:
        overrides["threads"] = args.threads
    if args.buckets:
        import json

        try:
            overrides["buckets"] = json.loads(Path(args.buckets).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"--buckets {args.buckets}: {exc}") from None
    engine = Engine(Settings(**overrides))
    server = ApiServer(
        engine, host=args.host, port=args.port,
        auth_file=Path(args.auth) if args.auth else None, insecure=args.insecure,
        max_workers=args.workers, console=not args.no_console,
        thumbnails=not args.no_thumbnails,
    )
    url = await server.start()
    auth = f"SigV4, users of {args.auth}" if args.auth else "any signature, loopback only"
    print(f"streamproc: Rekognition API at {url} ({auth}); metrics at {url}/metrics",
          flush=True)
    if not args.no_console:
        print(f"streamproc: web console at {url}/console/", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()
        engine.close()
    return 0


def _handler(args: argparse.Namespace) -> int:
    from streamproc.http.server import InsecureBindError

    if not args.verbose:
        logging.getLogger("streamproc").setLevel(logging.INFO)
    try:
        return asyncio.run(_serve(args))
    except (InsecureBindError, ValueError, OSError) as exc:
        print(f"streamproc serve: {exc}", file=sys.stderr)
        return 2


def add_commands(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve the Rekognition HTTP API (AWS SDKs, AWS CLI)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080; 0: any free)")
    # Also accepted after the command (`streamproc serve --store DIR`).
    p.add_argument("--store", default=argparse.SUPPRESS, help="collection store directory")
    p.add_argument("--auth", help="auth file (JSON users, keys and policies; README)")
    p.add_argument("--buckets", help="JSON file naming the buckets Image.S3Object may read "
                   "(default: $STREAMPROC_BUCKETS; README, Images in S3 buckets)")
    p.add_argument("--insecure", action="store_true",
                   help="allow a non-loopback address without --auth")
    p.add_argument("--workers", type=int, default=2, help="requests analysed in parallel")
    p.add_argument("--no-console", action="store_true", help="do not serve the web console")
    p.add_argument("--no-thumbnails", action="store_true",
                   help="the console keeps no thumbnails of the faces it indexes")
    p.set_defaults(handler=_handler)
