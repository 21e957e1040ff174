"""When a candidate may enter shadow and when a shadow model may replace the champion: a use
case's promotion policy (pure data; the gate is ``models.lifecycle.gate``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from models.lifecycle.evidence import BusinessValue

EVIDENCE_KINDS = ("shadow", "shadow_or_out_of_time", "out_of_time")


@dataclass(frozen=True)
class PromotionPolicy:
    """Thresholds of the promotion gate.

    Admission (``candidate → shadow``), on the candidate's out-of-time test rows: its
    calibration error at most ``max_calibration_error`` and its ROC-AUC at most
    ``admission_tolerance`` below the champion's on the same rows.

    Promotion (``shadow → champion``), on paired matured outcomes of shadow scoring, once the
    model has been in shadow ``min_shadow_days`` days (of the data clock) and at least
    ``min_shadow_rows`` of its rows have matured labels: ROC-AUC above the champion's by at
    least ``roc_auc_margin`` and, with ``require_significant_gain``, the lower bound of the
    bootstrap interval of the gain above 0; PR-AUC and business value not significantly worse
    (interval upper bound ≥ 0); calibration error at most ``max_calibration_error``; the
    day-to-day PSI of its score at most ``max_score_psi``. Enough evidence but not better:
    rejected. Not enough evidence after ``max_shadow_days``: ``evidence`` says what happens —
    ``shadow`` rejects, ``shadow_or_out_of_time`` decides on the out-of-time rows instead.
    ``out_of_time`` skips shadow: candidates are decided on out-of-time rows at once.

    A use case's first model (no champion yet) is promoted from ``candidate`` when it clears
    ``first_model_min_roc_auc`` and ``first_model_max_calibration_error`` on its out-of-time
    rows: there is nothing to shadow it against.
    """

    roc_auc_margin: float = 0.005
    max_calibration_error: float = 0.05
    first_model_min_roc_auc: float = 0.70
    first_model_max_calibration_error: float = 0.05
    evidence: str = "shadow_or_out_of_time"
    min_shadow_rows: int = 500
    min_shadow_days: int = 14
    max_shadow_days: int = 90
    admission_tolerance: float = 0.02
    require_significant_gain: bool = True
    max_score_psi: float = 0.25
    bootstrap_samples: int = 400
    confidence: float = 0.95
    business: BusinessValue = field(default_factory=BusinessValue)

    def __post_init__(self) -> None:
        if self.evidence not in EVIDENCE_KINDS:
            raise ValueError(f"promotion evidence {self.evidence!r} not in {EVIDENCE_KINDS}")
        if not 0 < self.confidence < 1 or self.bootstrap_samples < 0:
            raise ValueError("confidence must be in (0, 1) and bootstrap_samples >= 0")
        if self.min_shadow_days > self.max_shadow_days:
            raise ValueError(
                f"min_shadow_days {self.min_shadow_days} > max_shadow_days {self.max_shadow_days}"
            )
