"""The web console (``/console/``): live cameras, visits, people, try-it pages, metrics."""

from streamproc.console.app import PREFIX, Console

__all__ = ["Console", "PREFIX"]
