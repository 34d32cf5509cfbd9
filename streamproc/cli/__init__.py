"""The ``streamproc`` command: one subcommand per registered operation (AWS CLI names),
plus serve, run, demo, models and celebrities. The entry point is ``streamproc.cli.main:main``
(importing it here would make ``python -m streamproc.cli.main`` warn)."""
