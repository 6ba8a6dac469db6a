"""The tutorial notebook's second part (the pipeline in notebook form), filled in as a learner would.

../shared/seed/mlflow_tracking_notebook.md, "Chaîne de traitement foodcast avec MLflow": load,
features, validate, train, future and predict cells with their exercises done, the hint code
kept (the commented ``for i, mae in enumerate(maes)`` loop, the ``past = etl(...)`` /
``span_future(past['order_date'].max())`` cell, the ``code_path`` / ``conda_env`` hint of the
custom-model exercise, adapted to MLflow 3: ``name=`` and ``code_paths=``), on the default data
(weeks 180-200 -> 201) against a temporary sqlite store. Also MLflow 3: the forest is logged
with skops, told to trust the tree type, as MLflow's own error message says.
"""

import os
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import PROJECT

pytestmark = pytest.mark.usefixtures("store")


def run_notebook(tmp_path):
    """The notebook's cells, in order; returns the names a learner would inspect afterwards."""
    # --- imports cell --------------------------------------------------------------------------
    import logging
    import logging.config

    import mlflow
    import mlflow.pyfunc
    import mlflow.sklearn
    import yaml
    from sklearn.ensemble import RandomForestRegressor

    import foodcast.settings as settings
    from foodcast.application.mlflow_utils import mlflow_log_pandas, mlflow_log_plotly
    from foodcast.domain.feature_engineering import features_offline, features_online
    from foodcast.domain.forecast import cross_validate, plotly_predictions, span_future
    from foodcast.domain.multi_model import MultiModel
    from foodcast.domain.transform import etl

    with open(settings.LOGGING_CONFIGURATION_FILE, 'r') as f:
        logging.config.dictConfig(yaml.safe_load(f.read()))

    start_week = 180
    end_week = 200
    next_week = 201

    mlflow.set_experiment('foodcast')

    # --- Loading -------------------------------------------------------------------------------
    with mlflow.start_run(run_name='load'):
        mlflow.log_params({'start_week': start_week, 'end_week': end_week})
        data = etl(settings.DATA_DIR, start_week, end_week)
        mlflow_log_pandas(data, 'data', 'data.csv')

    # --- Offline feature engineering -----------------------------------------------------------
    with mlflow.start_run(run_name='features'):
        mlflow.log_params({'start_week': start_week, 'end_week': end_week})
        train = features_offline(data)
        x_train, y_train = train.drop(columns='cash_in'), train[['order_date', 'cash_in']]
        mlflow_log_pandas(x_train, 'training_set', 'x_train.csv')
        mlflow_log_pandas(y_train, 'training_set', 'y_train.csv')
        x_train = x_train.set_index('order_date')
        y_train = y_train.set_index('order_date')['cash_in']

    # --- Validating ----------------------------------------------------------------------------
    with mlflow.start_run(run_name='validate') as validate_run:
        n_fold = 10
        n_estimators = 10
        n_models = 10
        mlflow.log_params({'start_week': start_week, 'end_week': end_week, 'n_fold': n_fold,
                           'n_estimators': n_estimators, 'n_models': n_models})
        model = MultiModel(RandomForestRegressor(n_estimators=n_estimators, random_state=42), n_models)
        maes, preds_train = cross_validate(model, x_train, y_train, n_fold)
        mlflow_log_pandas(preds_train.reset_index(), 'cross_validation', 'predictions.csv')
        fig = plotly_predictions(preds_train, y_train)
        mlflow_log_plotly(fig, 'plots', 'validation.html')
        for i, mae in enumerate(maes):
            mlflow.log_metric('MAE_MIN', mae.min(), step=i)
            mlflow.log_metric('MAE_MAX', mae.max(), step=i)
            for j, result in enumerate(mae):
                mlflow.log_metric('MAE{}'.format(j), result, step=i)

    # --- Training ------------------------------------------------------------------------------
    with mlflow.start_run(run_name='train') as train_run:
        mlflow.log_params({'start_week': start_week, 'end_week': end_week, 'n_estimators': n_estimators,
                           'n_models': n_models})
        model.fit(x_train, y_train)
        # MLflow 3 saves scikit-learn models with skops, which asks which types to trust.
        mlflow.sklearn.log_model(model.single_estimator, name='simple_model',
                                 skops_trusted_types=['sklearn.tree._tree.Tree'])
        # The hint's code_path, from the notebooks/ directory the tutorial runs in (here: the
        # project's), and its conda_env with today's versions.
        code_path = [os.path.join(PROJECT, 'foodcast', 'domain', 'multi_model.py')]
        conda_env = {
            'channels': ['defaults', 'conda-forge'],
            'dependencies': [
                f'python={sys.version_info.major}.{sys.version_info.minor}',
                'pip',
                {'pip': [f'mlflow=={mlflow.__version__}', f'numpy=={np.__version__}',
                         f'pandas=={pd.__version__}', 'scikit-learn', 'cloudpickle']},
            ],
            'name': 'multi-model-env',
        }
        mlflow.pyfunc.log_model(name='multi_model', python_model=model, code_paths=code_path,
                                conda_env=conda_env)

    # --- Online feature engineering ------------------------------------------------------------
    with mlflow.start_run(run_name='future'):
        mlflow.log_param('next_week', next_week)
        past = etl(settings.DATA_DIR, next_week - 1, next_week - 1)
        x_pred = span_future(past['order_date'].max())
        x_pred = features_online(x_pred, past)
        mlflow_log_pandas(x_pred, 'prediction_set', 'x_pred.csv')

    # --- Predicting ----------------------------------------------------------------------------
    with mlflow.start_run(run_name='predict') as predict_run:
        mlflow.log_params({'next_week': next_week, 'start_week': start_week, 'end_week': end_week,
                           'n_estimators': n_estimators, 'n_models': n_models})
        x_pred = x_pred.set_index('order_date')
        y_pred = model.predict(None, x_pred)
        mlflow_log_pandas(y_pred.reset_index(), 'predictions', 'y_pred.csv')
        fig = plotly_predictions(y_pred)
        mlflow_log_plotly(fig, 'plots', 'predictions.html')

    return {"train": train, "x_train": x_train, "y_train": y_train, "maes": maes, "model": model,
            "x_pred": x_pred, "y_pred": y_pred, "validate_run": validate_run.info.run_id,
            "train_run": train_run.info.run_id, "predict_run": predict_run.info.run_id}


def test_the_notebook_runs_and_its_forecast_is_the_seed_forest(tmp_path):
    import mlflow
    from sklearn.ensemble import RandomForestRegressor

    out = run_notebook(tmp_path)
    client = mlflow.tracking.MlflowClient()

    # validate: the hint's loop logged the best/worst member and every member, per fold
    maes = out["maes"]
    assert maes.shape == (10, 10)
    history = client.get_metric_history(out["validate_run"], "MAE_MIN")
    assert [m.step for m in history] == list(range(10))
    assert [m.value for m in history] == pytest.approx(maes.min(axis=1))
    assert len(client.get_metric_history(out["validate_run"], "MAE9")) == 10

    # the tutorial's features and the seed's forest, fitted on all rows
    x_train, y_train = out["x_train"], out["y_train"]
    assert list(x_train.columns) == [f"weekday_{d}" for d in range(1, 7)] + ["hour_cos_1", "hour_sin_1", "lag_1W"]
    assert len(x_train) == 20 * 168  # weeks 181-200: week 180 has no lag
    seed = RandomForestRegressor(n_estimators=10, random_state=42).fit(x_train, y_train)
    y_pred = out["y_pred"]
    np.testing.assert_array_equal(y_pred["y_pred_simple"].to_numpy(), np.clip(seed.predict(out["x_pred"]), 0, None))

    # the forecast week: 201, Monday 2018-10-29 to Sunday 2018-11-04, with point and interval
    assert y_pred.index[0] == pd.Timestamp("2018-10-29 00:00") and len(y_pred) == 168
    assert list(y_pred.columns) == [f"y_pred_{i}" for i in range(10)] + ["y_pred_simple", "y_pred", "y_lower", "y_upper"]
    assert (y_pred["y_lower"] >= 0).all()
    assert (y_pred["y_lower"] <= y_pred["y_pred"]).all() and (y_pred["y_pred"] <= y_pred["y_upper"]).all()

    # the logged custom model loads back and predicts the same frame
    loaded = mlflow.pyfunc.load_model(f"runs:/{out['train_run']}/multi_model")
    pd.testing.assert_frame_equal(loaded.predict(out["x_pred"].reset_index(drop=True)),
                                  y_pred.reset_index(drop=True))
    logged = client.list_artifacts(out["predict_run"], "predictions")
    assert [a.path for a in logged] == ["predictions/y_pred.csv"]
