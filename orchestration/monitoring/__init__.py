"""Monitoring domain: drift, matured-label performance, pipeline diagnosis, retrain policy.

Wire into ``orchestration/definitions.py``::

    Definitions(
        assets=[..., *monitoring_assets],
        sensors=[..., retrain_sensor],  # launches job "weekly_retrain" (training domain)
    )

``retrain_sensor`` names its job ``weekly_retrain``; ``build_retrain_sensor(job_name=...,
cooldown_days=...)`` makes another. Resources used: ``lakehouse``; MLflow as in training.
"""

from orchestration.monitoring.assets import monitoring_assets
from orchestration.monitoring.sensor import build_retrain_sensor, retrain_sensor

__all__ = ["build_retrain_sensor", "monitoring_assets", "retrain_sensor"]
