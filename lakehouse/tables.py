"""The project's tables. ``CATALOG`` is what ``Lakehouse()`` writes and reads by default.

* ``bronze.<source>``: one table per landing source, the contract's columns as landed plus
  lineage (``_source_file``, ``_batch_id``, ``_ingested_at``), partitioned by ``_batch_date``
  (the landing day), so re-ingesting a day replaces exactly that day.
* ``silver.*``: typed, deduplicated, merged current state (entities) or facts (events, usage).
* ``features.*``: one row per active customer per day (``lakehouse/features.py``).
* ``labels.churn``: matured 30-day churn outcomes (``lakehouse/labels.py``).
* ``ml.*``: training set, model decisions, predictions, explanations, scoring runs.
* ``monitoring.*``: drift, pipeline diagnosis, matured-label performance, verdicts.
"""

from __future__ import annotations

from dataclasses import replace

import polars as pl

from lakehouse.catalog import Catalog, TableSpec
from lakehouse.features import CHURN_V1_FEATURES, FEATURE_TABLES
from lakehouse.ingest import AUDIT_COLUMNS
from lakehouse.labels import LABELS_CHURN
from lakehouse.landing import LANDING_SOURCES, TIMESTAMP, LandingSource


def bronze_spec(source: LandingSource) -> TableSpec:
    """The bronze table of a landing source: its contract columns plus lineage columns."""
    return TableSpec(
        name=f"bronze.{source.name}",
        schema={**source.columns, **AUDIT_COLUMNS},
        description=f"Landed {source.name} files as delivered, with lineage. {source.description}",
        partition_by=("_batch_date",),
        primary_key=(*source.key, "_batch_date"),
    )


BRONZE = {name: bronze_spec(source) for name, source in LANDING_SOURCES.items()}
_contract = {name: dict(source.columns) for name, source in LANDING_SOURCES.items()}
_lineage = {"_batch_id": pl.String()}

SILVER_CUSTOMERS = TableSpec(
    name="silver.customers",
    schema={**_contract["customers"], **_lineage},
    description="Current profile of every customer (latest version by updated_at).",
    primary_key=("customer_id",),
    version_column="updated_at",
)
SILVER_CUSTOMER_HISTORY = TableSpec(
    name="silver.customer_history",
    schema={**_contract["customers"], **_lineage},
    description="Every version of every customer profile, for as-of (point-in-time) lookups.",
    primary_key=("customer_id", "updated_at"),
)
SILVER_SUBSCRIPTION_EVENTS = TableSpec(
    name="silver.subscription_events",
    schema={**_contract["subscription_events"], "event_date": pl.Date(), **_lineage},
    description="Subscription lifecycle events (signup, plan/seat/price change, cancel).",
    partition_by=("event_date",),
    primary_key=("event_id", "event_date"),
)
SILVER_USAGE_DAILY = TableSpec(
    name="silver.usage_daily",
    schema={**_contract["usage"], **_lineage},
    description="Product usage per customer per day (a missing row means no usage).",
    partition_by=("usage_date",),
    primary_key=("customer_id", "usage_date"),
)
SILVER_INVOICES = TableSpec(
    name="silver.invoices",
    schema={**_contract["invoices"], **_lineage},
    description="Monthly invoices, net of discount.",
    primary_key=("invoice_id",),
    version_column="issued_at",
)
SILVER_PAYMENTS = TableSpec(
    name="silver.payments",
    schema={**_contract["payments"], **_lineage},
    description="Payment attempts (failures are retried by dunning).",
    primary_key=("payment_id",),
    version_column="attempted_at",
)
SILVER_TICKETS = TableSpec(
    name="silver.tickets",
    schema={**_contract["tickets"], **_lineage},
    description="Support tickets, current state (resolved rows replace open ones).",
    primary_key=("ticket_id",),
    version_column="updated_at",
)
SILVER = {
    spec.name: spec
    for spec in (
        SILVER_CUSTOMERS,
        SILVER_CUSTOMER_HISTORY,
        SILVER_SUBSCRIPTION_EVENTS,
        SILVER_USAGE_DAILY,
        SILVER_INVOICES,
        SILVER_PAYMENTS,
        SILVER_TICKETS,
    )
}

ML_TRAINING_SET = TableSpec(
    name="ml.training_set",
    schema={
        "customer_id": pl.String(),
        "as_of_date": pl.Date(),
        "event_timestamp": TIMESTAMP,
        "churned_30d": pl.Int64(),
        **CHURN_V1_FEATURES,
    },
    description="Point-in-time training rows: labels.churn joined to feature service churn_v1.",
    primary_key=("customer_id", "as_of_date"),
)
ML_MODEL_DECISIONS = TableSpec(
    name="ml.model_decisions",
    schema={
        "decision_id": pl.String(),
        "decided_at": TIMESTAMP,
        "model_name": pl.String(),
        "challenger_version": pl.String(),
        "champion_version": pl.String(),
        "decision": pl.String(),
        "reason": pl.String(),
        "challenger_roc_auc": pl.Float64(),
        "champion_roc_auc": pl.Float64(),
        "challenger_calibration_error": pl.Float64(),
        "dagster_run_id": pl.String(),
    },
    description="Every champion/challenger decision (promote, reject, rollback) and its reason.",
    primary_key=("decision_id",),
    append_only=True,
)

ML_SCORING_RUNS = TableSpec(
    name="ml.scoring_runs",
    schema={
        "scoring_run_id": pl.String(),
        "as_of_date": pl.Date(),
        "dagster_run_id": pl.String(),
        "partition": pl.String(),
        "model_name": pl.String(),
        "model_version": pl.String(),
        "model_alias": pl.String(),
        "feature_service": pl.String(),
        "source_versions": pl.String(),
        "scoring_policy": pl.String(),
        "predictions_version": pl.Int64(),
        "explanations_version": pl.Int64(),
        "rows": pl.Int64(),
        "started_at": TIMESTAMP,
        "finished_at": TIMESTAMP,
        "code_version": pl.String(),
    },
    description=(
        "One row per completed scoring run. The current predictions of an as-of date are those "
        "of its latest run here; earlier runs stay in ml.predictions as the audit record."
    ),
    primary_key=("scoring_run_id",),
    append_only=True,
)
ML_PREDICTIONS = TableSpec(
    name="ml.predictions",
    schema={
        "prediction_id": pl.String(),
        "scoring_run_id": pl.String(),
        "customer_id": pl.String(),
        "as_of_date": pl.Date(),
        "event_timestamp": TIMESTAMP,
        "score": pl.Float64(),
        "risk_band": pl.String(),
        "decision": pl.String(),
        "missing_feature_count": pl.Int64(),
        "reason_codes": pl.List(pl.String()),
        "reason_features": pl.List(pl.String()),
        "reason_values": pl.List(pl.Float64()),
        "reason_contributions": pl.List(pl.Float64()),
        "model_name": pl.String(),
        "model_version": pl.String(),
        "model_alias": pl.String(),
        "model_sha256": pl.String(),
        "feature_service": pl.String(),
        "source_versions": pl.String(),
        "training_set_version": pl.Int64(),
        "dagster_run_id": pl.String(),
        "partition": pl.String(),
        "code_version": pl.String(),
        "scored_at": TIMESTAMP,
    },
    description="Every churn score with its reasons, model, data versions and run (append-only).",
    partition_by=("as_of_date",),
    primary_key=("prediction_id", "as_of_date"),
    append_only=True,
)
ML_PREDICTION_EXPLANATIONS = TableSpec(
    name="ml.prediction_explanations",
    schema={
        "prediction_id": pl.String(),
        "scoring_run_id": pl.String(),
        "customer_id": pl.String(),
        "as_of_date": pl.Date(),
        "base_value": pl.Float64(),
        **{f"shap__{name}": pl.Float64() for name in CHURN_V1_FEATURES},
    },
    description="Full SHAP vector (log-odds) and base value of every prediction (append-only).",
    partition_by=("as_of_date",),
    primary_key=("prediction_id", "as_of_date"),
    append_only=True,
)

_MONITORING_RUN = {"dagster_run_id": pl.String(), "computed_at": TIMESTAMP}

MONITORING_FEATURE_DRIFT = TableSpec(
    name="monitoring.feature_drift",
    schema={
        "as_of_date": pl.Date(),
        "feature": pl.String(),
        "kind": pl.String(),
        "psi": pl.Float64(),
        "ks_statistic": pl.Float64(),
        "ks_pvalue": pl.Float64(),
        "chi2_pvalue": pl.Float64(),
        "reference_rows": pl.Int64(),
        "current_rows": pl.Int64(),
        "reference_null_rate": pl.Float64(),
        "current_null_rate": pl.Float64(),
        "importance": pl.Float64(),
        "status": pl.String(),
        "model_version": pl.String(),
        "training_set_version": pl.Int64(),
        **_MONITORING_RUN,
    },
    description="Drift of each feature and of the score vs the champion's training reference.",
    partition_by=("as_of_date",),
    primary_key=("as_of_date", "feature"),
)
MONITORING_DIAGNOSIS = TableSpec(
    name="monitoring.diagnosis",
    schema={
        "as_of_date": pl.Date(),
        "check": pl.String(),
        "subject": pl.String(),
        "status": pl.String(),
        "value": pl.Float64(),
        "expected": pl.Float64(),
        "detail": pl.String(),
        **_MONITORING_RUN,
    },
    description="Pipeline-health checks (row counts, null rates, schema, freshness) per day.",
    partition_by=("as_of_date",),
    primary_key=("as_of_date", "check", "subject"),
)
MONITORING_PERFORMANCE = TableSpec(
    name="monitoring.performance",
    schema={
        "as_of_date": pl.Date(),
        "label_as_of_date": pl.Date(),
        "model_alias": pl.String(),
        "model_version": pl.String(),
        "predictions": pl.Int64(),
        "labelled": pl.Int64(),
        "label_coverage": pl.Float64(),
        "positives": pl.Int64(),
        "roc_auc": pl.Float64(),
        "pr_auc": pl.Float64(),
        "ece": pl.Float64(),
        "training_roc_auc": pl.Float64(),
        **_MONITORING_RUN,
    },
    description="Matured-label performance per prediction vintage, model alias and version.",
    primary_key=("as_of_date", "model_alias", "model_version"),
)
MONITORING_VERDICTS = TableSpec(
    name="monitoring.verdicts",
    schema={
        "as_of_date": pl.Date(),
        "verdict": pl.String(),
        "retrain_recommended": pl.Boolean(),
        "reasons": pl.List(pl.String()),
        "evidence": pl.List(pl.String()),
        "report_path": pl.String(),
        **_MONITORING_RUN,
    },
    description="One row per monitoring run: verdict, retrain recommendation, report (append).",
    primary_key=("as_of_date", "dagster_run_id"),
    append_only=True,
)
# Shadow scoring (a challenger scored beside the champion) writes the same rows to tables of
# their own: they are audited and monitored, but never current and never served online.
ML_SHADOW_PREDICTIONS = replace(
    ML_PREDICTIONS,
    name="ml.shadow_predictions",
    description="Shadow scores of non-serving models (e.g. challenger), as ml.predictions.",
)
ML_SHADOW_PREDICTION_EXPLANATIONS = replace(
    ML_PREDICTION_EXPLANATIONS,
    name="ml.shadow_prediction_explanations",
    description="SHAP of shadow scores, as ml.prediction_explanations.",
)

MONITORING_TABLES = (
    MONITORING_FEATURE_DRIFT,
    MONITORING_DIAGNOSIS,
    MONITORING_PERFORMANCE,
    MONITORING_VERDICTS,
)

CATALOG = Catalog(
    [
        *BRONZE.values(),
        *SILVER.values(),
        *FEATURE_TABLES.values(),
        LABELS_CHURN,
        ML_TRAINING_SET,
        ML_MODEL_DECISIONS,
        ML_SCORING_RUNS,
        ML_PREDICTIONS,
        ML_PREDICTION_EXPLANATIONS,
        ML_SHADOW_PREDICTIONS,
        ML_SHADOW_PREDICTION_EXPLANATIONS,
        *MONITORING_TABLES,
    ]
)

__all__ = [
    "BRONZE",
    "CATALOG",
    "FEATURE_TABLES",
    "LABELS_CHURN",
    "ML_MODEL_DECISIONS",
    "ML_PREDICTIONS",
    "ML_PREDICTION_EXPLANATIONS",
    "ML_SCORING_RUNS",
    "ML_SHADOW_PREDICTIONS",
    "ML_SHADOW_PREDICTION_EXPLANATIONS",
    "ML_TRAINING_SET",
    "MONITORING_DIAGNOSIS",
    "MONITORING_FEATURE_DRIFT",
    "MONITORING_PERFORMANCE",
    "MONITORING_TABLES",
    "MONITORING_VERDICTS",
    "SILVER",
    "bronze_spec",
]
