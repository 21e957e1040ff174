"""The use-case spec: one typed object per model family, from which everything is generated.

A ``UseCase`` names its source system (feeds and silver tables), its entity, how features are
built and grouped into Feast views and a feature service, its label, its model design and
hyper-parameters, the reason catalogue, and the scoring, promotion and monitoring policies.
Tables (``tables``), Feast objects (``feature_repo``) and Dagster assets (``orchestration``) are
generated from it, keyed by the use-case name, so several use cases live side by side.

Specs are written as YAML files (``load.py`` validates them into these types; see
``docs/own-data.md``): a data scientist describes data and model without writing Python, and the
same file format serves the built-in use cases.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path
from types import MappingProxyType

import polars as pl

from lakehouse.catalog import TableSpec
from lakehouse.features.labels import LabelBuilder, LabelDefinition
from lakehouse.features.views import FeatureBuilder, FeatureView, Ratio
from lakehouse.ingest.tables import SourceTables
from models.encoding import FeatureEncoding
from models.lifecycle.policy import PromotionPolicy
from models.monitoring.policy import MonitoringSettings
from models.scoring.policy import Reason, ScoringPolicy
from models.training.params import ModelDesign, TrainingParams
from models.usecase.tables import UseCaseTables


@dataclass(frozen=True)
class Entity:
    """What is scored: its Feast entity name and join key."""

    name: str
    join_key: str
    description: str = ""


@dataclass(frozen=True)
class SourceSpec:
    """Where the data comes from: a source system's feeds, and whether it is simulated.

    ``start_date`` is the first daily partition of a real source (``None``: the
    ``SCOREHOUSE_START_DATE`` setting); a simulated source's partitions are its world's days.
    """

    tables: SourceTables
    simulator: str | None = None
    start_date: date | None = None

    @property
    def name(self) -> str:
        return self.tables.name


@dataclass(frozen=True)
class FeatureSpec:
    """How feature values are built, and how they are grouped into views and a service."""

    builder_name: str
    builder: FeatureBuilder
    views: tuple[FeatureView, ...]
    ratios: tuple[Ratio, ...]
    ttl_days: int
    population_view: str
    service: str
    service_features: tuple[str, ...]
    """The service's features in model order (by default: view columns, then ratios)."""
    vocabularies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def features(self) -> dict[str, pl.DataType]:
        """Every feature of the service, in model order, with its type."""
        types = {name: dtype for view in self.views for name, dtype in view.columns.items()}
        return {name: types[name] for name in self.service_features}

    def view(self, name: str) -> FeatureView:
        return next(v for v in self.views if v.name == name)

    @property
    def population_table(self) -> str:
        return self.view(self.population_view).table


@dataclass(frozen=True)
class LabelSpec:
    """The label: its table definition and the builder that computes it."""

    definition: LabelDefinition
    builder_name: str
    builder: LabelBuilder


@dataclass(frozen=True)
class TrainingSetSpec:
    """Which matured labels become training rows."""

    history_days: int = 30
    """Skip as-of dates closer than this to the first landed day (windows not yet filled)."""
    every_days: int = 7
    """Keep one as-of date per this many days (weekly snapshots: less repeated information)."""
    window_days: int | None = None
    """Keep only the as-of dates of the newest ``window_days`` days of matured labels: a recent
    window that represents today's world after a change (None: every matured label)."""

    def __post_init__(self) -> None:
        if self.history_days < 0 or self.every_days < 1:
            raise ValueError(
                f"history_days must be >= 0 and every_days >= 1, got {self.history_days} and "
                f"{self.every_days}"
            )
        if self.window_days is not None and self.window_days < self.every_days:
            raise ValueError(
                f"window_days {self.window_days} keeps no more than one as-of date: make it at "
                f"least every_days ({self.every_days})"
            )


@dataclass(frozen=True)
class QualitySpec:
    """Expectations on the training set beyond schema and keys (``models.quality``)."""

    label_rate_error: tuple[float, float] = (0.002, 0.5)
    label_rate_warn: tuple[float, float] = (0.01, 0.10)
    nullable: tuple[str, ...] = ()
    """Features that are null by definition in some rows (ratios over zero, no event yet)."""
    ranges: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)
    non_negative: bool = False
    """Every numeric feature is >= 0 (counts, sums, amounts): a negative one is a defect."""
    tenure: Mapping[str, str] | None = None
    """Leakage check: ``feature`` (days since ``column`` of ``table``, per entity) must be at
    least 1 day below ``as_of − column``; None: only the event-timestamp check runs."""


@dataclass(frozen=True)
class Evaluation:
    """A simulated world's truth to evaluate models against (never a feature)."""

    truth: str
    """The evaluation table under the landing folder's ``_evaluation/`` (e.g. churn_truth)."""
    column: str
    """Its true probability of the label's event."""


@dataclass(frozen=True)
class ExplanationSpec:
    """LIME beside the exact TreeSHAP of record, on a seeded sample of every scoring run.

    SHAP stays the system of record (exact and additive); LIME is a second, model-agnostic
    opinion a regulator may ask for, and its agreement with SHAP is a monitored metric.
    """

    sample_size: int = 1000
    """Rows explained per scoring run (all rows when the run has fewer)."""
    top_k: int = 5
    """Agreement is measured on each row's ``top_k`` features by |SHAP|."""
    seed: int = 0
    """Seeds the sample and every row's LIME perturbations."""
    num_samples: int = 1000
    """LIME perturbations per row."""
    min_rank_correlation: float = 0.5
    """Alert when the mean Spearman correlation of a run falls below this."""

    def __post_init__(self) -> None:
        if self.sample_size < 1 or self.top_k < 2 or self.num_samples < 100:
            raise ValueError("sample_size must be >= 1, top_k >= 2 and num_samples >= 100")
        if not -1 <= self.min_rank_correlation <= 1:
            raise ValueError("min_rank_correlation must be in [-1, 1]")


@dataclass(frozen=True)
class FairnessSpec:
    """Where the protected attributes live, and what counts as an adverse outcome.

    The attributes (``UseCase.protected_attributes``) are columns of the silver table
    ``table``; ``via`` is the silver table that links the entity's join key to ``table``'s
    key (None when ``table`` holds the join key itself). An entity's outcome is adverse when
    its band is in ``adverse_bands`` or, with no bands, when its decision is the scoring
    policy's ``decision_above``.
    """

    table: str
    via: str | None = None
    adverse_bands: tuple[str, ...] = ()
    min_adverse_impact_ratio: float = 0.8
    """Alert when a group's approval rate is below this share of the best group's."""
    min_group_rows: int = 30
    """Groups with fewer scored rows are recorded but never alert (too few to judge)."""

    def __post_init__(self) -> None:
        if not 0 < self.min_adverse_impact_ratio <= 1 or self.min_group_rows < 1:
            raise ValueError("min_adverse_impact_ratio must be in (0, 1] and min_group_rows >= 1")


@dataclass(frozen=True)
class Schedules:
    """Cron schedules of the daily pipeline, the retrain and the promotion gate (UTC; stopped
    until turned on)."""

    daily: str = "0 2 * * *"
    retrain: str = "0 3 * * 1"
    gate: str = "0 5 * * *"


@dataclass(frozen=True)
class UseCase:
    """One model family, declared: see the module docstring."""

    name: str
    description: str
    source: SourceSpec
    entity: Entity
    features: FeatureSpec
    label: LabelSpec
    training: TrainingSetSpec
    design: ModelDesign
    params: TrainingParams
    reasons: Mapping[str, Reason]
    scoring: ScoringPolicy = field(default_factory=ScoringPolicy)
    promotion: PromotionPolicy = field(default_factory=PromotionPolicy)
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings)
    schedules: Schedules = field(default_factory=Schedules)
    quality: QualitySpec = field(default_factory=QualitySpec)
    evaluation: Evaluation | None = None
    protected_attributes: tuple[str, ...] = ()
    """Columns that must never be features or reasons (kept for fairness evidence only)."""
    explanations: ExplanationSpec | None = None
    """LIME-vs-SHAP agreement per scoring run (None: not recorded)."""
    fairness: FairnessSpec | None = None
    """Fairness evidence per scoring run (None: not recorded)."""
    path: Path | None = None
    """The spec file this came from."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "reasons", MappingProxyType(dict(self.reasons)))

    @property
    def model_name(self) -> str:
        """The registered model's name in MLflow."""
        return self.name

    @property
    def encoding(self) -> FeatureEncoding:
        return self.design.encoding

    @cached_property
    def tables(self) -> UseCaseTables:
        return UseCaseTables(
            use_case=self.name,
            join_key=self.entity.join_key,
            features=tuple(self.features.features),
            label=self.label.definition,
            views=self.features.views,
            explanations=self.explanations is not None,
            fairness=self.fairness is not None,
            protected_attributes=self.protected_attributes,
        )

    def table_specs(self) -> list[TableSpec]:
        """Every table this use case writes (its source's tables are the source's)."""
        return list(self._specs.values())

    def table_spec(self, name: str) -> TableSpec:
        """The spec of one of this use case's tables."""
        return self._specs[name]

    @cached_property
    def _specs(self) -> dict[str, TableSpec]:
        return {spec.name: spec for spec in self.tables.specs()}
