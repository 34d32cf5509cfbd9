"""``streamproc run deployment.yaml``: run every stream of a deployment until stopped."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Any

from streamproc.runtime.deployment import DeploymentError, load_deployment

__all__ = ["add_commands"]

log = logging.getLogger("streamproc")


async def _run(args: argparse.Namespace) -> None:
    from streamproc.engine import Engine
    from streamproc.runtime.runtime import Runtime

    engine = Engine()
    deployment = load_deployment(args.deployment, operations=engine.operations)
    engine.close()
    if args.store:
        deployment = deployment.model_copy(update={"store": args.store})
    runtime = Runtime(deployment)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, runtime.stop)
    await runtime.run(until_done=args.until_done)


def _handler(args: argparse.Namespace) -> int:
    if not args.verbose:
        logging.getLogger("streamproc").setLevel(logging.INFO)
        logging.getLogger().setLevel(logging.INFO)
    from streamproc.cluster.errors import ClusterError
    from streamproc.http.server import InsecureBindError
    from streamproc.mqtt import MqttUnavailableError
    from streamproc.runtime.runtime import NatsUnavailableError
    from streamproc.store.errors import StoreError

    try:
        asyncio.run(_run(args))
    except (DeploymentError, InsecureBindError) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except (NatsUnavailableError, MqttUnavailableError, OSError, ClusterError, StoreError) as exc:
        # Start-up failed (everything it started is closed again): say why, no traceback.
        print(f"streamproc run: {exc}", file=sys.stderr)
        return 1
    return 0


def add_commands(sub: Any) -> None:
    p = sub.add_parser("run", help="run the streams of a deployment file")
    p.add_argument("deployment", help="deployment YAML file (see configs/)")
    p.add_argument(
        "--until-done",
        action="store_true",
        help="exit once every stream's source has ended (files without loop)",
    )
    p.set_defaults(handler=_handler)
