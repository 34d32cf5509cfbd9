"""Argument parsing and error reporting shared by every subcommand."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from streamproc.errors import RekognitionError

__all__ = ["main", "print_json", "EXIT_SERVICE_ERROR"]

#: The AWS CLI exits 254 when the service answered with an error.
EXIT_SERVICE_ERROR = 254

Handler = Callable[[argparse.Namespace], int]


def print_json(response: dict[str, Any]) -> None:
    json.dump(response, sys.stdout, indent=4, default=str)
    sys.stdout.write("\n")


def build_parser() -> argparse.ArgumentParser:
    from streamproc import __version__
    from streamproc.cli import celebrities, cluster, demo, models, operations, run, serve

    parser = argparse.ArgumentParser(
        prog="streamproc",
        description="Self-hosted vision service that speaks the Amazon Rekognition image API.",
    )
    parser.add_argument("--version", action="version", version=f"streamproc {__version__}")
    parser.add_argument(
        "--store", help="collection store directory (default: $STREAMPROC_STORE or per-user data)"
    )
    parser.add_argument("--threads", type=int, help="onnxruntime threads per model")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    operations.add_commands(sub)
    celebrities.add_commands(sub)
    models.add_commands(sub)
    demo.add_commands(sub)
    run.add_commands(sub)
    serve.add_commands(sub)
    cluster.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    handler: Handler = args.handler
    try:
        return handler(args)
    except RekognitionError as exc:
        print(f"An error occurred ({exc.code}): {exc.message}", file=sys.stderr)
        return EXIT_SERVICE_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `streamproc list-faces ... | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
