"""The monitoring dashboard: a self-contained page (nothing fetched), its charts and sections,
and the ROC-AUC band against a bootstrap of the same AUC."""

from __future__ import annotations

import re
from datetime import date, timedelta

import numpy as np
from sklearn.metrics import roc_auc_score

from models.monitoring.dashboard import auc_standard_error, line_chart, write_dashboard
from tests.scored_world import ScoredWorld
from tests.world import churn

CHURN = churn()


def test_the_auc_band_matches_a_bootstrap() -> None:
    """Hanley–McNeil's standard error of the AUC (all a vintage's counts allow) against the
    spread of 2,000 class-stratified bootstrap AUCs of a binormal sample; and no band without
    both classes."""
    rng = np.random.default_rng(0)
    positives, negatives = 150, 1350
    y = np.r_[np.ones(positives), np.zeros(negatives)]
    score = np.r_[rng.normal(1.2, 1, positives), rng.normal(0, 1, negatives)]
    auc = roc_auc_score(y, score)
    replicates = []
    for _ in range(2000):
        pick = np.r_[
            rng.integers(0, positives, positives), positives + rng.integers(0, negatives, negatives)
        ]
        replicates.append(roc_auc_score(y[pick], score[pick]))
    # Hanley–McNeil assumes exponential score distributions: for a binormal sample it is known
    # to err on the wide side (here about +20 %), never much narrower.
    bootstrap = float(np.std(replicates))
    assert 0.95 * bootstrap <= auc_standard_error(auc, positives, negatives) <= 1.35 * bootstrap
    assert np.isnan(auc_standard_error(0.8, 0, 10))


def test_a_chart_is_inline_svg_with_its_series_and_levels() -> None:
    days = [date(2025, 5, 1) + timedelta(days=7 * i) for i in range(4)]
    svg = line_chart(
        {"PSI": list(zip(days, [0.01, 0.05, 0.4, float("nan")], strict=True))},
        title="usage: PSI",
        levels=[("alert", 0.25)],
    )
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<circle") == 3  # the NaN point is left out
    assert "alert" in svg and "usage: PSI" in svg
    assert "no data yet" in line_chart({"PSI": []}, title="empty")


def test_the_dashboard_of_a_monitored_world_opens_offline(monitored_world: ScoredWorld) -> None:
    path = write_dashboard(monitored_world.lake, CHURN)
    page = path.read_text(encoding="utf-8")
    assert path.name == "dashboard.html" and page.startswith("<!DOCTYPE html>")
    # Nothing the page would fetch: no script, no external reference of any kind.
    assert "<script" not in page and "<link" not in page and "@import" not in page
    assert re.search(r"(?:src|href)\s*=", page) is None and "://" not in page
    for title in (
        "Latest verdict",
        "Matured performance by vintage",
        "Drift over time",
        "Model lifecycle",
    ):
        assert title in page
    assert page.count("<svg") >= 2  # at least the score's and a feature's drift over time
    day = str(max(monitored_world.days))
    assert f"Day {day}" in page or day in page
