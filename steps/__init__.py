"""The pipeline's stage commands, one module per MLproject entry point (``python -m steps.<stage>``).

Under ``main``, a stage command hands its work to ``main``'s fork server, which has the
stage's libraries imported already (see ``foodcast.application.prefork``); on its own, or if
that server is not there, it runs the stage itself.
"""

from foodcast.application.prefork import hand_over

hand_over(__name__)
