"""One module per console page; each has ``add_routes(router, console)``."""

from streamproc.console.pages import home, live, people, visits

ALL = [home, live, visits, people]
