"""When a challenger may replace the champion: a use case's promotion policy (pure data)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PromotionPolicy:
    """Thresholds of the champion/challenger decision."""

    roc_auc_margin: float = 0.005
    max_calibration_error: float = 0.05
    first_model_min_roc_auc: float = 0.70
    first_model_max_calibration_error: float = 0.05
    evidence: str = "shadow_or_out_of_time"
    """``shadow``: judge on matured labels of shadow scoring only (too few rows: reject);
    ``shadow_or_out_of_time``: those when there are ``min_shadow_rows``, else the out-of-time
    rows; ``out_of_time``: always the challenger's out-of-time test rows."""
    min_shadow_rows: int = 500
