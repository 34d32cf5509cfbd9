"""The plugin manager: built-in and third-party plugins load the same way."""

from __future__ import annotations

import pluggy

from streamproc import hookspecs

__all__ = ["ENTRY_POINT_GROUP", "create_plugin_manager"]

ENTRY_POINT_GROUP = "streamproc"


def create_plugin_manager(*, load_entry_points: bool = True) -> pluggy.PluginManager:
    """A manager with every plugin of the ``streamproc`` entry point group registered.

    ``check_pending`` makes a misspelled hook implementation fail at start-up instead of
    being silently ignored.
    """
    pm = pluggy.PluginManager("streamproc")
    pm.add_hookspecs(hookspecs)
    if load_entry_points:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    pm.check_pending()
    return pm
