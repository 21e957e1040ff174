"""How scores become bands, decisions and reasons: a use case's scoring policy and reason
catalogue (pure data)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np


@dataclass(frozen=True)
class Reason:
    """A reviewed reason code and its sentence, for one model feature."""

    code: str
    text: str


@dataclass(frozen=True)
class ScoringPolicy:
    """Risk bands, the decision threshold, reasons per prediction and chunk size.

    ``bands`` maps a band name to its lower bound: a score gets the band with the highest bound
    it reaches (so one band must start at 0). A score at or above ``decision_threshold`` gets
    ``decision_above``, else ``decision_below``.
    """

    bands: Mapping[str, float] = field(
        default_factory=lambda: {"low": 0.0, "medium": 0.05, "high": 0.15}
    )
    decision_threshold: float = 0.10
    decision_below: str = "none"
    decision_above: str = "outreach"
    reasons: int = 3
    chunk_rows: int = 200_000

    def __post_init__(self) -> None:
        ordered = dict(sorted(self.bands.items(), key=lambda item: item[1]))
        if not ordered or min(ordered.values()) != 0.0:
            raise ValueError(f"scoring bands need one band starting at 0, got {dict(self.bands)}")
        if not 0 < self.decision_threshold < 1 or self.reasons < 0 or self.chunk_rows < 1:
            raise ValueError(
                "decision_threshold must be in (0, 1), reasons >= 0 and chunk_rows >= 1"
            )
        object.__setattr__(self, "bands", MappingProxyType(ordered))

    def bands_of(self, scores: np.ndarray) -> np.ndarray:
        """Each score's band: the one with the highest lower bound the score reaches."""
        names = np.asarray(list(self.bands), dtype=object)
        bounds = np.fromiter(self.bands.values(), dtype=np.float64)
        # side="right": a score equal to a bound reaches it; below every bound: the first band
        reached = np.searchsorted(bounds, scores, side="right") - 1
        return names[np.maximum(reached, 0)]

    def decisions_of(self, scores: np.ndarray) -> np.ndarray:
        """Each score's decision: ``decision_above`` at or above the threshold, else below."""
        return np.where(
            np.asarray(scores) >= self.decision_threshold,
            np.asarray(self.decision_above, dtype=object),
            np.asarray(self.decision_below, dtype=object),
        )

    @property
    def thresholds(self) -> list[float]:
        """Every boundary a score can cross (band bounds and the decision threshold), sorted."""
        return sorted({*list(self.bands.values())[1:], self.decision_threshold})

    def to_json(self) -> dict[str, object]:
        return {
            "bands": dict(self.bands),
            "decision_threshold": self.decision_threshold,
            "decision_below": self.decision_below,
            "decision_above": self.decision_above,
            "reasons": self.reasons,
            "chunk_rows": self.chunk_rows,
        }
