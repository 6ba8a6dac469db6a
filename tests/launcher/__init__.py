"""``python -m launcher.mlflow_cli ...`` is ``python -m mlflow ...`` started warm: the tests'
``mlflow run`` commands hand their work to a fork of a server that imported MLflow's command
line once per test worker (``conftest.warm_server``), the product's own fork server
(``foodcast.runtime.fork_server``), instead of importing it each time (~3.8 s of CPU each).
A command the server refuses (another session: the tests that signal a process group of their
own) or that finds no server runs as ``python -m mlflow`` does, in its own interpreter."""

from foodcast.runtime.fork_server import run_in_fork_server

run_in_fork_server(__name__)
