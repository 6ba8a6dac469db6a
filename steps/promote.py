"""promote: the champion/challenger gate of the model registry."""

from foodcast.pipeline.command import stage_command
from foodcast.pipeline.stages.promote import PROMOTE


@stage_command(PROMOTE)
def promote(
    train_run_id: str, registered_model_name: str, gate_weeks: int, gate_margin: float, allow_missing: bool
) -> None:
    """Compare the version of REGISTERED_MODEL_NAME that the train run TRAIN_RUN_ID registered
    (the challenger) with the version the alias champion points at, and move champion to the
    challenger when it is at least as good: both configurations (features and model parameters)
    backtested, rolling origin, on the GATE_WEEKS weeks ending with the challenger's last
    training week (batches from FOODCAST_DATA_DIR), the challenger's MAE at most (1 +
    GATE_MARGIN) times the champion's. The first model becomes champion; with no alias champion,
    the challenger is compared with the version that was champion last. Logs the two MAEs
    (challenger_mae, champion_mae), tags foodcast.decision (promoted / kept) and
    foodcast.reason, and writes the decision in the model version's description.

    A model per restaurant (granularity=restaurant) is backtested per restaurant: the MAEs are
    the chain's total's, and when both models are per restaurant the challenger must also pass
    the rule on the median established restaurant's MAE over seasonal naive's
    (challenger_median_restaurant_over_naive, champion_median_restaurant_over_naive)."""
    import mlflow

    from foodcast.pipeline import promotion
    from foodcast.tracking import names

    client = mlflow.tracking.MlflowClient()
    gating = promotion.gate(client, registered_model_name, train_run_id, gate_weeks, gate_margin, allow_missing)
    decision = gating.decision
    scores = {
        "challenger_mae": decision.challenger_mae,
        "champion_mae": decision.champion_mae,
        "challenger_median_restaurant_over_naive": decision.challenger_median_ratio,
        "champion_median_restaurant_over_naive": decision.champion_median_ratio,
    }
    mlflow.log_metrics({k: v for k, v in scores.items() if v is not None})
    mlflow.set_tags(
        {
            names.DECISION_TAG: gating.verdict,
            names.REASON_TAG: decision.reason,
            names.CHALLENGER_VERSION_TAG: gating.challenger.version,
            names.SUMMARY_TAG: gating.summary,
        }
    )
    promotion.apply(client, registered_model_name, gating)


if __name__ == "__main__":
    promote()
