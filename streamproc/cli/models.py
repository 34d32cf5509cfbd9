"""``streamproc models verify``: check every model file and print a table."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_commands"]


def _verify(args: argparse.Namespace) -> int:
    from rich.console import Console

    from streamproc.inference import render_verify_table, verify

    results = verify()
    Console().print(render_verify_table(results))
    return 0 if all(r.ok for r in results) else 1


def add_commands(sub: Any) -> None:
    p = sub.add_parser("models", help="model files: verify checksums and preparation")
    models_sub = p.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    v = models_sub.add_parser("verify", help="check every model's checksums and that it loads")
    v.set_defaults(handler=_verify)
