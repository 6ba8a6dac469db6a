"""train: fit the multi-model on a features run's training set and log both models."""

from foodcast.application import stages
from foodcast.application.command import stage_command


@stage_command(stages.TRAIN)
def train(features_run_id, n_estimators, n_models):
    """Read training_set/x_train.csv and y_train.csv from the features run FEATURES_RUN_ID, fit
    MultiModel(RandomForestRegressor(N_ESTIMATORS, random_state=42), N_MODELS) on all rows, and
    log two models with signature and input example: simple_model (sklearn flavor, skops format:
    the forest fitted on all rows) and multi_model (pyfunc: y_pred_0..y_pred_{N_MODELS-1} and
    y_pred_simple), loadable as runs:/<run_id>/multi_model."""
    from foodcast.application.models import log_models
    from foodcast.application.upstream import training_set
    from foodcast.domain.multi_model import random_forest_multi_model

    model = random_forest_multi_model(n_estimators, n_models)
    x, y = training_set(features_run_id)
    model.fit(x, y)
    log_models(model, x)


if __name__ == "__main__":
    train()
