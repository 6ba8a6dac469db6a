"""train: fit the multi-model on a features run's training set, log and register it."""

from typing import Any

from foodcast.pipeline.command import stage_command
from foodcast.pipeline.stages.train import TRAIN


@stage_command(TRAIN)
def train(features_run_id: str, registered_model_name: str, set_alias: bool, **settings: Any) -> None:
    """Read training_set/x_train.csv and y_train.csv from the features run FEATURES_RUN_ID, fit
    the multi-model (ESTIMATOR with its parameters, N_MODELS bootstrap members, an interval at
    INTERVAL_LEVEL calibrated out of sample) on all rows, and log two models with signature and
    input example, neither pickled: simple_model (sklearn flavor, skops format: the estimator
    fitted on all rows) and multi_model (pyfunc from code, skops: y_pred_0..y_pred_{N_MODELS-1},
    y_pred_simple, y_pred, y_lower, y_upper), loadable as runs:/<run_id>/multi_model. Registers
    multi_model as a new version of REGISTERED_MODEL_NAME (tagged with this run, the features
    run and the weeks trained on). Moves no alias unless SET_ALIAS is true (then challenger):
    promote points challenger at the version it gates.

    A training set per restaurant (granularity=restaurant: a restaurant column) gets one
    restaurant model (RESTAURANT_MODEL local or global, fitted on FOODCAST_WORKERS processes,
    every core by default): multi_model takes long rows (restaurant, fallback, features) and
    forecasts every restaurant and the chain's total (its rows named chain, the sum of its
    restaurants'), refusing a restaurant it was not trained on; simple_model is then the
    pooled model's estimator (every restaurant's rows, level-scaled): the features of any
    restaurant, without its name."""
    from foodcast.core.multi_model import forecast_model
    from foodcast.core.restaurants import RESTAURANT, RestaurantModel
    from foodcast.pipeline.params import model_settings
    from foodcast.settings import workers
    from foodcast.tracking import names
    from foodcast.tracking.datasets import training_set
    from foodcast.tracking.model_registry import mark_challenger
    from foodcast.tracking.models import log_models
    from foodcast.tracking.runs import check_run, training_weeks

    x, y = training_set(features_run_id)
    model_params = model_settings(settings)
    if RESTAURANT in x.columns:
        fitted = RestaurantModel(model=model_params, kind=settings["restaurant_model"], workers=workers()).fit(x, y)
        # Only the input example (the rows of the last hour) is needed now: the training set is
        # let go before the models are serialized, the stage's other peak of memory.
        x = x[x.index == x.index.max()]
        del y
        # The processes it was fitted on change nothing in its forecasts: logged as fitted on one,
        # so that its parameters (a served model's, a reloaded one's) do not say FOODCAST_WORKERS.
        info = log_models(fitted.set_params(workers=1), x, registered_model_name)
    else:
        info = log_models(forecast_model(**model_params).fit(x, y), x, registered_model_name)
    weeks = training_weeks(check_run(features_run_id, names.FEATURES))
    mark_challenger(registered_model_name, info, features_run_id, weeks, set_alias)


if __name__ == "__main__":
    train()
