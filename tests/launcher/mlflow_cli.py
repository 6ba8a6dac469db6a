"""``python -m mlflow``, in the directory ``FOODCAST_TEST_CWD`` names (the server and its
commands share one directory, this package's: the server serves only commands of its own)."""

import os
import runpy

os.chdir(os.environ.pop("FOODCAST_TEST_CWD", os.getcwd()))
os.environ["PWD"] = os.getcwd()
runpy.run_module("mlflow", run_name="__main__", alter_sys=True)
