"""Every table a use case writes, generated from its spec and named after it.

| table | from |
| --- | --- |
| ``features.<view>`` (one per view) | the feature builder |
| ``labels.<label table>`` | the label builder |
| ``ml.<uc>_training_set`` | labels joined to the feature service (point in time) |
| ``ml.<uc>_model_decisions`` | promotion and rollback |
| ``ml.<uc>_predictions``, ``…_prediction_explanations``, ``…_scoring_runs``, shadow | scoring |
| ``monitoring.<uc>_feature_drift``, ``…_diagnosis``, ``…_performance``, ``…_verdicts`` | monitor |
| ``monitoring.<uc>_explanation_agreement``, ``…_lime_explanations``, ``…_fairness`` | evidence |
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import polars as pl

from lakehouse.catalog import TIMESTAMP, TableSpec
from lakehouse.features.labels import LabelDefinition
from lakehouse.features.views import FeatureView
from models.evidence.tables import EvidenceTables
from models.lifecycle.tables import decisions_spec, decisions_table
from models.monitoring.tables import MonitoringTables
from models.scoring.tables import ScoringTables


@dataclass(frozen=True)
class UseCaseTables:
    """Names and specs of one use case's tables (see the module docstring)."""

    use_case: str
    join_key: str
    features: tuple[str, ...]
    label: LabelDefinition
    views: tuple[FeatureView, ...]
    explanations: bool = False
    """LIME agreement tables (the spec's ``explanations``)."""
    fairness: bool = False
    """The fairness table (the spec's ``fairness``)."""
    protected_attributes: tuple[str, ...] = ()

    @property
    def training_set(self) -> str:
        return f"ml.{self.use_case}_training_set"

    @property
    def decisions(self) -> str:
        return decisions_table(self.use_case)

    @property
    def labels(self) -> str:
        return self.label.table

    @property
    def feature_tables(self) -> list[str]:
        return [view.table for view in self.views]

    @cached_property
    def scoring(self) -> ScoringTables:
        return ScoringTables(self.use_case, self.join_key, self.features)

    @cached_property
    def monitoring(self) -> MonitoringTables:
        return MonitoringTables(self.use_case)

    @cached_property
    def evidence(self) -> EvidenceTables:
        return EvidenceTables(
            self.use_case, self.join_key, self.features, self.explanations, self.fairness
        )

    def training_set_spec(self, feature_types: dict[str, pl.DataType]) -> TableSpec:
        return TableSpec(
            name=self.training_set,
            schema={
                self.join_key: pl.String(),
                "as_of_date": pl.Date(),
                "event_timestamp": TIMESTAMP,
                self.label.column: pl.Int64(),
                **feature_types,
            },
            description=(
                f"Point-in-time training rows: {self.label.table} joined to the feature service."
            ),
            primary_key=(self.join_key, "as_of_date"),
        )

    def specs(self) -> list[TableSpec]:
        """Every table of the use case."""
        types = {name: dtype for view in self.views for name, dtype in view.columns.items()}
        return [
            *(view.spec(self.join_key) for view in self.views),
            self.label.spec(),
            self.training_set_spec({name: types[name] for name in self.features}),
            decisions_spec(self.use_case),
            *self.scoring.specs(),
            *self.monitoring.specs(),
            *self.evidence.specs(),
        ]
