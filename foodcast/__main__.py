"""``python -m foodcast``: the command line of :mod:`foodcast.cli`."""

from foodcast.cli import cli

cli()
