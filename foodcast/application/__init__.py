"""The tutorial's import path for the MLflow helpers (``mlflow_utils``), kept as public API."""
