"""The ``streamproc`` command: AWS-CLI-named operations plus models, demo and run."""

from streamproc.cli.main import main

__all__ = ["main"]
