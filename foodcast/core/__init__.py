"""The forecasting core: weeks, features, estimators, the multi-model, scoring and the
backtest's arithmetic, on pandas, numpy and scikit-learn alone.

No MLflow, no plots, no files: this is what worker processes and Spark executors run per
restaurant, and what the fastest tests exercise. The import contracts in ``pyproject.toml``
(``lint-imports``) hold it so.
"""
