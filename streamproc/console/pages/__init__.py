"""One module per console page; each has ``add_routes(router, console)``."""

from streamproc.console.pages import home, live

ALL = [home, live]
