"""The pipeline's stage commands, one module per MLproject entry point (``python -m steps.<stage>``).

Under ``main``, a stage command hands its work to ``main``'s fork server, which has the
stage's libraries imported already (see ``foodcast.runtime.fork_server``); on its own, or if
that server is not there, it runs the stage itself.

A command's body imports the libraries it uses when it runs, not at the top of its module, so
that ``--help`` answers at once (see README, "Layout").
"""

from foodcast.runtime.fork_server import run_in_fork_server

run_in_fork_server(__name__)
