"""Training domain: GX gates, xgboost training with MLflow, champion/challenger promotion.

Wire into ``orchestration/definitions.py``::

    Definitions(
        assets=[..., *training_assets],
        asset_checks=[*training_checks],
        jobs=[..., weekly_retrain_job],
        schedules=[..., weekly_retrain_schedule],
    )

``training_checks`` holds the GX checks of ``silver.customers``, ``silver.usage_daily``,
``silver.payments``, ``silver.tickets`` (they then run inside ``daily_ingest``) and of
``ml.training_set`` (it runs inside ``weekly_retrain``). Resources used: ``lakehouse`` and
``landing`` (already in ``default_resources()``); MLflow is located by ``MLFLOW_TRACKING_URI``
or defaults to SQLite under ``SCOREHOUSE_HOME``.
"""

from orchestration.training.assets import training_assets
from orchestration.training.checks import silver_checks, training_set_check
from orchestration.training.schedules import weekly_retrain_job, weekly_retrain_schedule

training_checks = [*silver_checks, training_set_check]

__all__ = [
    "training_assets",
    "training_checks",
    "weekly_retrain_job",
    "weekly_retrain_schedule",
]
