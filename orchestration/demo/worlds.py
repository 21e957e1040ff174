"""The demo worlds' defaults, set as ``SCOREHOUSE_SIM_*`` before the definitions load.

Imports nothing of the project: the settings (``orchestration.settings.WORLD``) are read once,
when the first module that needs them is imported, so these must be in the environment first.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

CHURN = {
    # A covariate shift shortly after the first model, then a concept shift, over a world long
    # enough for labels to mature and a retrain to learn it.
    "SCOREHOUSE_SIM_DAYS": "280",
    "SCOREHOUSE_SIM_DRIFT_DAY": "126",
    "SCOREHOUSE_SIM_CONCEPT_DAY": "130",
}
CREDIT = {
    # Two and a half years of a lender: a first model on day 500 (12-month outcomes of a
    # year and a half), the shock on day 540, a year on for the champion's outcomes of the
    # downturn to mature. The world ends before today (Dagster makes no future partitions).
    "SCOREHOUSE_SIM_LENDING_START_DATE": "2023-01-01",
    "SCOREHOUSE_SIM_LENDING_DAYS": "950",
    "SCOREHOUSE_SIM_SHOCK_DAY": "540",
}
WITHOUT_SHIFTS = {
    "SCOREHOUSE_SIM_DRIFT_DAY": "",
    "SCOREHOUSE_SIM_CONCEPT_DAY": "",
    "SCOREHOUSE_SIM_SHOCK_DAY": "none",
}


def set_defaults(use_cases: Sequence[str], *, shifts: bool = True) -> None:
    """The demo defaults of ``use_cases``' worlds, where the environment sets nothing; without
    ``shifts``, no drift, concept shift or economic shock at all."""
    defaults = dict(CHURN)
    if "credit" in use_cases:
        defaults.update(CREDIT)
    if not shifts:
        os.environ.update(WITHOUT_SHIFTS)
    for name, value in defaults.items():
        os.environ.setdefault(name, value)
