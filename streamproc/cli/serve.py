"""``streamproc serve``: the Rekognition HTTP API for AWS SDKs, the AWS CLI and Double Take."""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
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
    if args.nats and not args.cluster_node:
        raise ValueError("--nats names the cluster's servers: give --cluster-node NAME too")
    if args.cluster_node and not re.fullmatch(r"[A-Za-z0-9_\-]{1,64}", args.cluster_node):
        raise ValueError(f"--cluster-node {args.cluster_node!r}: a node name is 1-64 letters, "
                         "digits, '_' or '-' (as cluster.node in a deployment)")
    engine = Engine(Settings(**overrides))
    node = nc = None
    server = None
    try:
        if args.cluster_node:
            node, nc = await _join_cluster(engine, args)
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
        await stop.wait()
    finally:
        if server is not None:
            await server.stop()
        if node is not None:
            await node.stop()
        if nc is not None:
            await nc.close()
        engine.close()
    return 0


async def _join_cluster(engine: Any, args: argparse.Namespace) -> tuple[Any, Any]:
    """This process as node ``--cluster-node`` of the cluster at ``--nats`` (README,
    Scaling out): collections through the log, as ``run`` does with a ``cluster:`` section.
    For NATS credentials or TLS, run a deployment file (``streamproc run``) instead."""
    import nats

    from streamproc.cluster.node import ClusterNode, NodeSettings

    if not args.nats:
        raise ValueError("--cluster-node needs --nats URL[,URL...] (the cluster's servers)")
    urls = [u.strip() for u in args.nats.split(",") if u.strip()]
    try:
        nc = await asyncio.wait_for(
            nats.connect(servers=urls, name=f"streamproc-{args.cluster_node}",
                         max_reconnect_attempts=-1, reconnect_time_wait=0.2,
                         connect_timeout=2),
            10.0,
        )
    except Exception as exc:
        raise ValueError(f"cannot connect to NATS at {', '.join(urls)}: {exc!r}") from None
    node = ClusterNode(
        engine,
        NodeSettings(node=args.cluster_node, replicas=args.log_replicas,
                     log_stream=args.log_stream, read_wait_s=args.read_wait_s,
                     snapshot_records=args.snapshot_records),
        nc,
    )
    try:
        await node.start()
    except BaseException:
        await nc.close()
        raise
    print(f"streamproc: cluster node {args.cluster_node}, collection log {args.log_stream} "
          f"on {', '.join(urls)}", flush=True)
    return node, nc


def _handler(args: argparse.Namespace) -> int:
    from streamproc.cluster.errors import ClusterError
    from streamproc.http.server import InsecureBindError
    from streamproc.store.errors import StoreError

    if not args.verbose:
        logging.getLogger("streamproc").setLevel(logging.INFO)
    try:
        return asyncio.run(_serve(args))
    except (InsecureBindError, ValueError, OSError, ClusterError, StoreError) as exc:
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
    cluster = p.add_argument_group("cluster (README, Scaling out)")
    cluster.add_argument("--cluster-node", metavar="NAME",
                         help="serve as this node of a cluster: collections through the "
                         "JetStream log on --nats, this store its replica")
    cluster.add_argument("--nats", metavar="URL[,URL]", help="the cluster's NATS servers")
    cluster.add_argument("--log-stream", default="STREAMPROC_COLLECTIONS",
                         help="the collection log's stream (default STREAMPROC_COLLECTIONS)")
    cluster.add_argument("--log-replicas", type=int, default=3,
                         help="replicas of the log when this node creates it (default 3)")
    cluster.add_argument("--read-wait-s", type=float, default=5.0,
                         help="an API read waits this long to catch up with the log")
    cluster.add_argument("--snapshot-records", type=int, default=1000,
                         help="snapshot a collection after this many records (default 1000)")
    p.set_defaults(handler=_handler)
