"""The tutorial's import paths (``shared/seed/mlflow_tracking_notebook.md``), kept as public API:
each module re-exports what the notebook imports from where the code lives now."""
