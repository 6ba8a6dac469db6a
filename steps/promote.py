"""promote: the champion/challenger gate of the model registry."""

from foodcast.application import stages
from foodcast.application.command import stage_command


@stage_command(stages.PROMOTE)
def promote(train_run_id, registered_model_name, gate_weeks, gate_margin, allow_missing):
    """Compare the version of REGISTERED_MODEL_NAME that the train run TRAIN_RUN_ID registered
    (the challenger) with the version the alias champion points at, and move champion to the
    challenger when it is at least as good: both configurations (features and model parameters)
    backtested, rolling origin, on the GATE_WEEKS weeks ending with the challenger's last
    training week (batches from FOODCAST_DATA_DIR), the challenger's MAE at most (1 +
    GATE_MARGIN) times the champion's. The first model becomes champion. Logs the two MAEs
    (challenger_mae, champion_mae), tags foodcast.decision (promoted / kept) and
    foodcast.reason, and writes the decision in the model version's description."""
    import mlflow

    from foodcast.application import catalog, registry
    from foodcast.application.datasets import coverage_notes, log_batches_input
    from foodcast.application.upstream import check_run
    from foodcast.domain.transform import read_chain
    from foodcast.settings import data_dir

    client = mlflow.tracking.MlflowClient()
    challenger_run = check_run(train_run_id, catalog.TRAIN)
    challenger = registry.version_of_train_run(client, registered_model_name, train_run_id)
    champion = registry.champion_of(client, registered_model_name)
    if champion is None:
        decision = registry.Decision(True, "the first model of the registry")
    elif champion.version == challenger.version:
        decision = registry.Decision(True, "it is the champion already")
    else:
        champion_run = check_run(champion.tags[registry.TRAIN_RUN_TAG], catalog.TRAIN)
        ours, theirs = registry.configuration(challenger_run), registry.configuration(champion_run)
        start, end = ours[2]
        first, last = registry.gate_weeks_read(start, end, gate_weeks, registry.history_weeks(ours, theirs))
        hourly, coverage = read_chain(data_dir(), first, last, allow_missing=allow_missing)
        log_batches_input(hourly, data_dir(), first, last, notes=coverage_notes(coverage, allow_missing))
        decision = registry.gate(challenger_run, champion_run, gate_weeks, gate_margin, hourly)
    scores = {"challenger_mae": decision.challenger_mae, "champion_mae": decision.champion_mae}
    mlflow.log_metrics({k: v for k, v in scores.items() if v is not None})
    was = f"version {champion.version}" if champion is not None else "none"
    verdict = "promoted" if decision.promote else "kept"
    summary = (f"Challenger version {challenger.version} {verdict}: {decision.reason} "
               f"(champion before: {was}).")
    mlflow.set_tags({"foodcast.decision": verdict, "foodcast.reason": decision.reason,
                     "foodcast.challenger_version": challenger.version, "foodcast.summary": summary})
    if champion is not None and champion.version == challenger.version:
        return  # the version's description keeps the decision that made it champion
    client.update_model_version(registered_model_name, challenger.version, description=summary)
    if decision.promote:
        client.set_model_version_tag(registered_model_name, challenger.version, registry.REPLACED_TAG,
                                     champion.version if champion is not None else "")
        client.set_registered_model_alias(registered_model_name, registry.CHAMPION, challenger.version)


if __name__ == "__main__":
    promote()
