"""Everything that speaks to MLflow: runs and their upstream runs, artifacts with their
checksums, datasets, logged models and the model registry, plots, metrics, links into the UI,
the tracking server's access check and the runs a killed process left RUNNING.

``names`` imports nothing heavy: the stage table reads it.
"""
