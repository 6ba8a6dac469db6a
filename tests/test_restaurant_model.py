"""The restaurant model as train logs it, and as MLflow loads and serves it: one multi_model
answers every restaurant and the chain's total, the restaurant an input column, and refuses a
restaurant it was not trained on in one line naming it. Real MLflow on a temporary sqlite
store; the served model through MLflow's own scoring app, on loopback. Cheap: a small synthetic
long frame (3 restaurants, 10 weeks), two bootstrap members, no pipeline run."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
import urllib.error
import urllib.request

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import scoring_server

from foodcast.core.estimators import DEFAULT_MODEL
from foodcast.core.features import DEFAULT_FEATURES
from foodcast.core.restaurants import CHAIN, RestaurantModel, prediction_rows, training_rows
from foodcast.core.weeks import week_start
from foodcast.errors import FoodcastError
from foodcast.tracking import names
from foodcast.tracking.models import load_predictor, log_models
from foodcast.tracking.plots import forecast_title, plotly_restaurant_predictions

FEATURES = {**DEFAULT_FEATURES, "level_weeks": 3, "profile_weeks": 4}
MODEL = {**DEFAULT_MODEL, "n_models": 2}
NEXT_WEEK = 11
# restaurant: (first week, hourly level): "newcomer" has 2 weeks of history before NEXT_WEEK.
RESTAURANTS = {"alpha": (1, 30.0), "beta": (1, 80.0), "newcomer": (NEXT_WEEK - 2, 50.0)}


def long_hourly(last_week: int, seed: int = 0) -> pd.DataFrame:
    """Hourly cash-in per restaurant, weeks ``first``..``last_week``: evenings busier, weekends
    more so, sizes apart, noisy."""
    rng = np.random.default_rng(seed)
    hours = np.arange(168)
    shape = np.where((hours % 24 >= 17) & (hours % 24 <= 22), 1.0, 0.05) * np.where(hours >= 96, 1.5, 1.0)
    frames = []
    for name, (first, level) in RESTAURANTS.items():
        for week in range(first, last_week + 1):
            stamps = week_start(week) + pd.to_timedelta(hours, unit="h")
            cash = np.round(level * shape * rng.gamma(8.0, 1 / 8.0, size=168), 2)
            frames.append(pd.DataFrame({"restaurant": name, "order_date": stamps, "cash_in": cash}))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """The model fitted on weeks 1-10 and logged as train logs it; the rows of week 11."""
    root = tmp_path_factory.mktemp("restaurant_model")
    uri = f"sqlite:///{root}/mlflow.db"
    rows = training_rows(long_hourly(NEXT_WEEK - 1), **FEATURES)
    x = rows.drop(columns="cash_in").set_index("order_date")
    model = RestaurantModel(model=MODEL, kind="local", min_weeks=4).fit(x, rows["cash_in"])
    x_pred, notes = prediction_rows(long_hourly(NEXT_WEEK - 1), NEXT_WEEK, closed_weeks=4, **FEATURES)
    with pytest.MonkeyPatch.context() as patch:
        # Loading the model puts its copy of the core first on sys.path: gone after this module,
        # for the worker processes later tests start (see conftest's no_active_experiment).
        patch.setattr(sys, "path", list(sys.path))
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.chdir(root)
        mlflow.set_tracking_uri(uri)
        with mlflow.start_run() as run:
            info = log_models(model, x)
        loaded = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/{names.MULTI_MODEL}")
        yield model, loaded, x_pred, run, info, uri
        mlflow.set_tracking_uri(None)


def test_the_logged_model_forecasts_every_restaurant_and_the_chain_in_one_long_table(logged):
    model, loaded, x_pred, *_ = logged
    got = loaded.predict(x_pred)

    expected = model.predict_frame(x_pred.set_index("order_date"))
    pd.testing.assert_frame_equal(got.drop(columns="order_date"), expected.reset_index(drop=True))
    pd.testing.assert_series_equal(got["order_date"], x_pred["order_date"])
    assert list(got.columns[:3]) == ["restaurant", "order_date", "fallback"]
    assert list(got.columns[3:]) == ["y_pred_0", "y_pred_1", "y_pred_simple", "y_pred", "y_lower", "y_upper"]
    assert got.groupby("restaurant").size().to_dict() == {"alpha": 168, "beta": 168, CHAIN: 168, "newcomer": 168}
    # The newcomer's 2 weeks are too few for its own features: its rows are the fallback's.
    assert set(got.loc[got["restaurant"] == "newcomer", "fallback"]) == {1.0}
    # Coherent: the chain's point forecast is its restaurants' sum, hour by hour.
    chain = got[got["restaurant"] == CHAIN]["y_pred"].to_numpy()
    by_hour = got[got["restaurant"] != CHAIN].groupby(np.tile(np.arange(168), 3))["y_pred"].sum().to_numpy()
    np.testing.assert_allclose(chain, by_hour, rtol=0, atol=1e-9)
    assert (got["y_lower"] <= got["y_pred"]).all() and (got["y_pred"] <= got["y_upper"]).all()


def test_the_logged_model_carries_a_long_input_example_and_the_pooled_simple_model(logged):
    model, loaded, _, run, *_ = logged
    example = loaded.metadata.load_input_example(
        mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/{names.MULTI_MODEL}")
    )
    # The last training hour: every restaurant's row, then the chain's, the restaurant first.
    assert list(example.columns[:4]) == ["restaurant", "order_date", "fallback", "weekday_1"]
    assert list(example["restaurant"]) == ["alpha", "beta", "newcomer", CHAIN]
    simple = mlflow.sklearn.load_model(f"runs:/{run.info.run_id}/{names.SIMPLE_MODEL}")
    features = example[list(model.feature_names_in_)]
    np.testing.assert_allclose(simple.predict(features), model.pooled_model_.single_estimator.predict(features))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda x: x.assign(restaurant=x["restaurant"].replace("beta", "gamma")), "unknown restaurant 'gamma'"),
        (lambda x: x.drop(columns="restaurant"), "missing column 'restaurant'"),
        (lambda x: x.assign(order_date="soon"), "row 1, column 'order_date': not a timestamp: 'soon'"),
        (lambda x: x.assign(fallback=0.5), "row 1, column 'fallback': not 0 or 1: 0.5"),
        (lambda x: x.assign(weekday=42.0), "row 1, column 'weekday': outside 0 to 6: 42.0"),
        (lambda x: x.assign(surplus=1.0), "unknown column 'surplus'"),
    ],
    ids=["unknown-restaurant", "no-restaurant", "order-date", "fallback", "weekday", "surplus"],
)
def test_the_logged_model_refuses_rows_no_future_run_makes_in_one_line(logged, change, message):
    _, loaded, x_pred, *_ = logged
    with pytest.raises(MlflowException) as refusal:
        loaded.predict(change(x_pred))
    assert refusal.value.error_code == "INVALID_PARAMETER_VALUE"
    assert message in refusal.value.message and "\n" not in refusal.value.message, refusal.value.message


def test_predict_s_loader_refuses_a_chain_prediction_set_for_a_restaurant_model(logged):
    """A future run of granularity=chain handed to a restaurant model: said so in one line."""
    _, _, x_pred, run, info, _ = logged
    with mlflow.start_run():
        predict = load_predictor(
            f"runs:/{run.info.run_id}/{names.MULTI_MODEL}", mlflow.MlflowClient().get_logged_model(info.model_id), "t"
        )
        chain_rows = x_pred[x_pred["restaurant"] == CHAIN].drop(columns=["restaurant", "fallback"])
        chain_rows = chain_rows.set_index("order_date")
        with pytest.raises(FoodcastError, match=r"^the prediction set is the chain but the model of t forecasts per"):
            predict(chain_rows)
        assert predict(x_pred)["restaurant"].nunique() == 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(port: int, x: pd.DataFrame) -> tuple[int, dict]:
    body = json.dumps({"dataframe_split": x.to_dict(orient="split")}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/invocations", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refusal:
        return refusal.code, json.loads(refusal.read())


def test_the_served_model_answers_every_restaurant_and_refuses_an_unknown_one_with_http_400(logged):
    """``mlflow models serve``'s app (scoring_server.init) on the loaded model, run by uvicorn in
    this process: the same answers over HTTP without the seconds a server process takes to load."""
    import uvicorn

    model, loaded, x_pred, *_ = logged
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(scoring_server.init(loaded), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the scoring app did not start"
            time.sleep(0.05)
        x = x_pred.assign(order_date=x_pred["order_date"].dt.strftime("%Y-%m-%dT%H:%M:%S"))
        status, answer = _post(port, x)
        refused, refusal = _post(port, x.assign(restaurant=x["restaurant"].replace("alpha", "omega")))
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    served = pd.DataFrame(answer["predictions"])
    assert status == 200 and set(served["restaurant"]) == {"alpha", "beta", "newcomer", CHAIN}
    assert list(pd.to_datetime(served["order_date"])) == list(x_pred["order_date"])
    expected = model.predict_frame(x_pred.set_index("order_date")).reset_index(drop=True)
    pd.testing.assert_frame_equal(served.drop(columns="order_date"), expected, check_dtype=False)
    assert refused == 400 and refusal["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "unknown restaurant 'omega'" in refusal["message"], refusal["message"]


def test_the_plot_shows_the_chain_and_each_entry_of_its_dropdown_one_restaurant(logged):
    _, loaded, x_pred, *_ = logged
    preds = loaded.predict(x_pred)
    truth = preds[["restaurant", "order_date"]].assign(cash_in=np.arange(len(preds), dtype="float64"))
    fig = plotly_restaurant_predictions(preds, truth, forecast_title(NEXT_WEEK))

    def column(name, restaurant):
        frame = truth if name == "cash_in" else preds
        return list(np.round(frame.loc[frame["restaurant"] == restaurant, name].to_numpy(dtype="float64"), 2))

    # At first (and in the PNG): the chain.
    upper, lower, point, cash = (list(np.round(trace.y, 2)) for trace in fig.data)
    assert (point, lower, upper, cash) == tuple(column(c, CHAIN) for c in ("y_pred", "y_lower", "y_upper", "cash_in"))
    buttons = {button.label: button.args for button in fig.layout.updatemenus[0].buttons}
    assert list(buttons) == ["the chain (total)", "alpha", "beta", "newcomer (fallback)"]
    values, traces = buttons["beta"]
    assert list(traces) == [0, 1, 2, 3]
    assert [list(v) for v in values["y"]] == [column(c, "beta") for c in ("y_upper", "y_lower", "y_pred", "cash_in")]
    assert [list(v) for v in values["customdata"][2]] == [
        list(pair) for pair in zip(column("y_lower", "beta"), column("y_upper", "beta"), strict=True)
    ]
