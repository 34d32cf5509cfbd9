"""One module per console page; each has ``add_routes(router, console)``."""

from streamproc.console.pages import home, live, metrics, people, tryit, visits

ALL = [home, live, tryit, metrics, visits, people]
