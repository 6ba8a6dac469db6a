"""``python -m mlflow``, in the directory ``FOODCAST_TEST_CWD`` names (the server and its
commands share one directory, this package's: the server serves only commands of its own),
the entry point's command handed to the stage server ``FOODCAST_TEST_STAGE_SOCKET`` names if any."""

import os
import runpy

from foodcast.runtime.fork_server import SOCKET_ENV

os.chdir(os.environ.pop("FOODCAST_TEST_CWD", os.getcwd()))
os.environ["PWD"] = os.getcwd()
stage_server = os.environ.pop("FOODCAST_TEST_STAGE_SOCKET", "")
if stage_server:
    os.environ[SOCKET_ENV] = stage_server
runpy.run_module("mlflow", run_name="__main__", alter_sys=True)
