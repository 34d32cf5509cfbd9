"""``streamproc cluster``: ``seed`` brings a single-node store's collections into a
cluster's collection log, once; ``status`` shows the log, the snapshots, the live nodes and
which node runs each camera (README, Scaling out)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from streamproc.cli.main import print_json

__all__ = ["add_commands"]


async def _connect(args: argparse.Namespace, name: str) -> Any:
    import nats

    urls = [u.strip() for u in args.nats.split(",") if u.strip()]
    try:
        return await asyncio.wait_for(
            nats.connect(servers=urls, name=name, connect_timeout=2,
                         max_reconnect_attempts=-1, reconnect_time_wait=0.2),
            10.0,
        )
    except Exception as exc:
        raise ValueError(f"cannot connect to NATS at {', '.join(urls)}: {exc!r}") from None


async def _status(args: argparse.Namespace) -> int:
    from streamproc.cluster.log import CollectionLog, LogSettings
    from streamproc.cluster.snapshots import snapshot_bucket
    from streamproc.cluster.status import cluster_status

    nc = await _connect(args, "streamproc-status")
    try:
        js = nc.jetstream(timeout=5.0)
        log = CollectionLog(js, LogSettings(stream=args.log_stream))
        try:
            await js.stream_info(args.log_stream)
        except Exception:
            raise ValueError(f"no collection log {args.log_stream} on this cluster") from None
        status = await cluster_status(js, log, snapshot_bucket(args.log_stream),
                                      args.lease_bucket)
    finally:
        await nc.close()
    print_json(status.as_dict())
    return 0


def _status_handler(args: argparse.Namespace) -> int:
    from streamproc.cluster.errors import ClusterError

    try:
        return asyncio.run(_status(args))
    except (ValueError, ClusterError) as exc:
        print(f"streamproc cluster status: {exc}", file=sys.stderr)
        return 2


async def _seed(args: argparse.Namespace) -> int:
    from streamproc.cluster.log import CollectionLog, LogSettings
    from streamproc.cluster.seed import seed_log

    nc = await _connect(args, "streamproc-seed")
    try:
        log = CollectionLog(
            nc.jetstream(timeout=5.0),
            LogSettings(stream=args.log_stream, replicas=args.log_replicas),
        )
        summary = await seed_log(Path(args.store), log)
    finally:
        await nc.close()
    print_json({"Stream": args.log_stream, **summary.as_dict()})
    return 0


def _seed_handler(args: argparse.Namespace) -> int:
    from streamproc.cluster.errors import ClusterError
    from streamproc.store.errors import StoreError

    if not getattr(args, "store", None):
        print("streamproc cluster seed: --store DIR (the single-node store) is required",
              file=sys.stderr)
        return 2
    try:
        return asyncio.run(_seed(args))
    except (ValueError, OSError, ClusterError, StoreError) as exc:
        print(f"streamproc cluster seed: {exc}", file=sys.stderr)
        return 2


def add_commands(sub: Any) -> None:
    p = sub.add_parser("cluster", help="scale out on a NATS cluster (README, Scaling out)")
    commands = p.add_subparsers(dest="cluster_command", required=True, metavar="COMMAND")
    seed = commands.add_parser(
        "seed",
        help="publish a single-node store's collections to an empty collection log, once",
        description="Publish every collection, image and face of a single-node store to the "
        "cluster's collection log (which must be empty), keeping FaceIds, ImageIds and "
        "vectors. Then start the nodes with empty stores: they rebuild from the log. The "
        "store is only read.",
    )
    # Also accepted after the command (`streamproc cluster seed --store DIR`).
    seed.add_argument("--store", default=argparse.SUPPRESS, help="the single-node store")
    seed.add_argument("--nats", required=True, metavar="URL[,URL]",
                      help="the cluster's NATS servers")
    seed.add_argument("--log-stream", default="STREAMPROC_COLLECTIONS",
                      help="the collection log's stream (default STREAMPROC_COLLECTIONS)")
    seed.add_argument("--log-replicas", type=int, default=3,
                      help="replicas of the log if this creates it (default 3)")
    seed.set_defaults(handler=_seed_handler)
    status = commands.add_parser(
        "status",
        help="the collection log, its snapshots, the live nodes and who runs each camera",
        description="Print (JSON) the collection log's size and leader, each collection's "
        "records and snapshot, the snapshot objects, the live nodes and the node holding "
        "each camera's lease. Reads only.",
    )
    status.add_argument("--nats", required=True, metavar="URL[,URL]",
                        help="the cluster's NATS servers")
    status.add_argument("--log-stream", default="STREAMPROC_COLLECTIONS",
                        help="the collection log's stream (default STREAMPROC_COLLECTIONS)")
    status.add_argument("--lease-bucket", default="STREAMPROC_LEASES",
                        help="the camera leases' KV bucket (default STREAMPROC_LEASES)")
    status.set_defaults(handler=_status_handler)
