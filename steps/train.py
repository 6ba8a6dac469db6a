"""train: fit the multi-model on a features run's training set and log both models."""

from foodcast.application import stages
from foodcast.application.command import stage_command


@stage_command(stages.TRAIN)
def train(features_run_id, **model):
    """Read training_set/x_train.csv and y_train.csv from the features run FEATURES_RUN_ID, fit
    the multi-model (MODEL with its parameters, N_MODELS bootstrap members, an interval at
    INTERVAL_LEVEL calibrated out of sample) on all rows, and log two models with signature and
    input example: simple_model (sklearn flavor, skops format: the estimator fitted on all rows)
    and multi_model (pyfunc: y_pred_0..y_pred_{N_MODELS-1}, y_pred_simple, y_pred, y_lower,
    y_upper), loadable as runs:/<run_id>/multi_model."""
    from foodcast.application.models import log_models
    from foodcast.application.upstream import training_set
    from foodcast.domain.estimators import forecast_model

    x, y = training_set(features_run_id)
    log_models(forecast_model(**model).fit(x, y), x)


if __name__ == "__main__":
    train()
