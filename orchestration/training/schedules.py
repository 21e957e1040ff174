"""The weekly retrain job (training set → GX gate → train → evaluate → promote) and schedule."""

from __future__ import annotations

from dagster import AssetSelection, DefaultScheduleStatus, ScheduleDefinition, define_asset_job

from orchestration.training.assets import TRAINING_SET_KEY, training_assets

# Selecting assets selects their checks too: the training set's blocking GX check runs
# between ml/training_set and ml/churn_model.
weekly_retrain_job = define_asset_job(
    "weekly_retrain",
    selection=AssetSelection.assets(TRAINING_SET_KEY, *training_assets),
    description=(
        "Rebuild ml.training_set, validate it (blocking GX check), train and register a "
        "challenger, evaluate it against the champion and decide the promotion."
    ),
)

weekly_retrain_schedule = ScheduleDefinition(
    name="weekly_retrain_schedule",
    job=weekly_retrain_job,
    cron_schedule="0 3 * * 1",  # Mondays 03:00
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.STOPPED,
)
