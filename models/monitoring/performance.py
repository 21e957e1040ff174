"""Performance of past predictions once their labels have matured.

Alignment: predictions of day ``D`` use features through the end of ``D`` (entity timestamp
midnight after ``D``, ``models/scoring/batch.py``); the label as-of ``A`` uses features through
``A − 1`` and covers events in ``[A, A + horizon − 1]`` (``lakehouse/features/labels.py``). So the
prediction of ``D`` is judged by the label of ``A = D + 1``, which matures on ``D + maturity``: a
monitoring run of partition ``P`` can evaluate vintages up to ``P − maturity`` (churn: ``P − 30``).

Label coverage is labelled predictions / predictions: entities whose event happens on ``D``
itself are scored but not in the label population of ``D + 1``.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import polars as pl

from lakehouse.features.labels import LabelDefinition
from models.metrics import expected_calibration_error, pr_auc, roc_auc
from models.monitoring.tables import PERFORMANCE_SCHEMA

LABEL_LAG_DAYS = 1  # the label of D + 1 judges the prediction of D


def label_day(vintage: date) -> date:
    """The label as-of date that judges predictions of ``vintage``."""
    return vintage + timedelta(days=LABEL_LAG_DAYS)


def latest_matured_vintage(partition: date, label: LabelDefinition) -> date:
    """The newest vintage whose labels have matured by ``partition`` (``partition − maturity``:
    the label as of ``D + 1`` is written by partition ``as_of + maturity − 1``)."""
    return partition - timedelta(days=label.maturity_days - 1 + LABEL_LAG_DAYS)


def _metrics(y: np.ndarray, p: np.ndarray) -> tuple[float, float, float]:
    if not y.size:
        return math.nan, math.nan, math.nan
    ece = expected_calibration_error(y, p)
    if 0 < y.sum() < y.size:
        return roc_auc(y, p), pr_auc(y, p), ece
    return math.nan, math.nan, ece  # one class: ranking metrics are undefined


def vintage_performance(
    predictions: pl.DataFrame, labels: pl.DataFrame, label: LabelDefinition
) -> pl.DataFrame:
    """Metrics per vintage, model alias and version.

    ``predictions``: as_of_date, the entity key, score, model_alias, model_version (current
    rows). ``labels``: the entity key, as_of_date, the label column (the label table).
    """
    key, outcome = label.join_key, label.column
    aligned = labels.select(
        key,
        (pl.col("as_of_date") - pl.duration(days=LABEL_LAG_DAYS)).alias("as_of_date"),
        pl.col(outcome).alias("_outcome"),
    )
    joined = predictions.join(aligned, on=[key, "as_of_date"], how="left")
    rows = []
    for group_key, group in joined.group_by(
        "as_of_date", "model_alias", "model_version", maintain_order=True
    ):
        vintage, alias, version = group_key
        assert isinstance(vintage, date)
        labelled = group.filter(pl.col("_outcome").is_not_null())
        y = labelled["_outcome"].to_numpy().astype(np.float64)
        auc, ap, ece = _metrics(y, labelled["score"].to_numpy())
        rows.append(
            {
                "as_of_date": vintage,
                "label_as_of_date": label_day(vintage),
                "model_alias": alias,
                "model_version": version,
                "predictions": group.height,
                "labelled": labelled.height,
                "label_coverage": labelled.height / group.height,
                "positives": int(y.sum()),
                "roc_auc": auc,
                "pr_auc": ap,
                "ece": ece,
            }
        )
    return pl.DataFrame(rows, schema=PERFORMANCE_SCHEMA).sort("as_of_date", "model_alias")
