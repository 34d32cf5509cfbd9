"""streamproc's built-in operation plugins.

Each module is registered through the ``streamproc`` entry point group, exactly as a
third-party plugin package would be: streamproc's core imports none of them.
"""
