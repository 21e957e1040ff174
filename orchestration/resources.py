"""Resources, chosen by environment: embedded defaults under SCOREHOUSE_HOME, or URIs from env."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from dagster import ConfigurableResource
from feast import FeatureStore

from feature_repo.config import apply, feature_store
from lakehouse import config
from lakehouse.sources.claim import recorded_world
from lakehouse.sources.saas import DriftInjection, SimulationConfig
from lakehouse.storage import Lakehouse
from models.lifecycle.registry import ModelRegistry
from models.usecase import UseCase, load_use_cases
from orchestration.settings import WORLD


class LakehouseResource(ConfigurableResource):
    """The Delta lakehouse over every use case's tables. ``uri`` empty:
    ``SCOREHOUSE_LAKEHOUSE_URI`` or the embedded folder."""

    uri: str = ""

    def get(self) -> Lakehouse:
        return load_use_cases().lakehouse(self.uri or None)


class LandingResource(ConfigurableResource):
    """The landing folder where sources drop daily files (``SCOREHOUSE_LANDING_DIR``)."""

    path: str = ""

    def get(self) -> Path:
        return Path(self.path) if self.path else config.landing_dir()


class FeatureStoreResource(ConfigurableResource):
    """The Feast store of ``feature_repo/`` with its state under ``SCOREHOUSE_HOME``.

    ``lakehouse_uri`` empty: the same lakehouse as ``LakehouseResource``'s default.
    """

    lakehouse_uri: str = ""

    def get(self, pins: dict[str, int] | None = None) -> FeatureStore:
        """The store; ``pins`` reads those tables (``layer.name`` → version) at fixed versions."""
        return feature_store(self.lakehouse_uri or None, pins=pins)

    def apply(self) -> None:
        """Register every use case's entities, views and services (``feast apply``).

        Every table a view reads is created empty first if needed (with its catalog schema): a
        use case whose features were never built, or that was never scored, still has its views
        registered, and serves nothing rather than failing the others' apply.
        """
        use_cases = load_use_cases()
        lake = use_cases.lakehouse(self.lakehouse_uri or None)
        for use_case in use_cases.values():
            for table in (*use_case.tables.feature_tables, use_case.tables.scoring.predictions):
                lake.create_if_missing(table)
        apply(self.lakehouse_uri or None)


class ModelRegistryResource(ConfigurableResource):
    """MLflow tracking and registry. ``tracking_uri`` empty: ``MLFLOW_TRACKING_URI`` or the
    embedded SQLite store under ``SCOREHOUSE_HOME``."""

    tracking_uri: str = ""

    def get(self, use_case: UseCase) -> ModelRegistry:
        """The registry of one use case's model."""
        return ModelRegistry(use_case.model_name, self.tracking_uri or None)


class SimulatorResource(ConfigurableResource):
    """The simulated world (defaults: ``SCOREHOUSE_SIM_*``); day 0 is ``SCOREHOUSE_START_DATE``."""

    customers: int = WORLD.customers
    days: int = WORLD.days
    seed: int = WORLD.seed
    drift_day: int | None = WORLD.drift_day
    usage_shift: float = WORLD.usage_shift
    price_change: float = WORLD.price_change
    concept_day: int | None = WORLD.concept_day
    churn_risk: float = WORLD.churn_risk
    churn_risk_segment: str = WORLD.churn_risk_segment

    def config(self, last_day: date, landing_dir: Path | None = None) -> SimulationConfig:
        """The world's configuration, simulated at least up to ``last_day``.

        When ``landing_dir`` already holds a recorded world (``lakehouse.sources.claim``), that
        world is the configuration: a re-run of any job, with or without the demo's settings in
        its environment, simulates exactly the world the folder holds.
        """
        days = max(self.days, (last_day - WORLD.start_date).days + 1)
        recorded = recorded_world(landing_dir, "saas") if landing_dir is not None else None
        if recorded is not None:
            start = date.fromisoformat(recorded["start_date"])
            return SimulationConfig.from_identity(recorded, max(days, (last_day - start).days + 1))
        drift = []
        if self.drift_day is not None:
            start = WORLD.start_date + timedelta(days=self.drift_day)
            if self.usage_shift:
                drift.append(DriftInjection("usage_shift", start, self.usage_shift))
            if self.price_change:
                drift.append(DriftInjection("price_change", start, self.price_change))
        if self.concept_day is not None and self.churn_risk:
            column, _, value = self.churn_risk_segment.partition("=")
            start = WORLD.start_date + timedelta(days=self.concept_day)
            segment = {column: value} if value else None
            drift.append(DriftInjection("churn_risk", start, self.churn_risk, segment))
        return SimulationConfig(
            customers=self.customers,
            start_date=WORLD.start_date,
            days=days,
            seed=self.seed,
            drift=drift,
        )


def default_resources() -> dict[str, ConfigurableResource]:
    return {
        "lakehouse": LakehouseResource(),
        "landing": LandingResource(),
        "simulator": SimulatorResource(),
        "feature_store": FeatureStoreResource(),
        "model_registry": ModelRegistryResource(),
    }
