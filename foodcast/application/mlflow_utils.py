"""The tutorial's MLflow helpers: re-exported from :mod:`foodcast.tracking.artifacts`."""

from foodcast.tracking.artifacts import mlflow_log_pandas, mlflow_log_plotly

__all__ = ["mlflow_log_pandas", "mlflow_log_plotly"]
