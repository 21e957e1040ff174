"""Resources, chosen by environment: embedded defaults under SCOREHOUSE_HOME, or URIs from env."""

from __future__ import annotations

import json
import os
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dagster import ConfigurableIOManager, ConfigurableResource, InputContext, OutputContext
from feast import FeatureStore

from feature_repo.config import apply, feature_store
from lakehouse import config
from lakehouse.sources.claim import recorded_world
from lakehouse.sources.lending import EconomicShock, LendingConfig
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
    """The simulated world (defaults: ``SCOREHOUSE_SIM_*``); day 0 is ``SCOREHOUSE_START_DATE``.

    One world, two companies on the same calendar and seed: the SaaS company (``customers``,
    its drift) and the lender (``loans``, its economic shock on ``shock_day``).
    """

    customers: int = WORLD.customers
    days: int = WORLD.days
    seed: int = WORLD.seed
    drift_day: int | None = WORLD.drift_day
    usage_shift: float = WORLD.usage_shift
    price_change: float = WORLD.price_change
    concept_day: int | None = WORLD.concept_day
    churn_risk: float = WORLD.churn_risk
    churn_risk_segment: str = WORLD.churn_risk_segment
    loans: int = WORLD.loans
    shock_day: int | None = WORLD.shock_day
    lending_days: int | None = WORLD.lending_days
    """The lending world's length when it differs from ``days``."""

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

    def lending_config(self, last_day: date, landing_dir: Path | None = None) -> LendingConfig:
        """The lending world's configuration, simulated at least up to ``last_day``; the world
        recorded in ``landing_dir`` if there is one (as ``config``)."""
        first = WORLD.start_of("lending")
        days = max(self.lending_days or self.days, (last_day - first).days + 1)
        recorded = recorded_world(landing_dir, "lending") if landing_dir is not None else None
        if recorded is not None:
            start = date.fromisoformat(recorded["start_date"])
            return LendingConfig.from_identity(recorded, max(days, (last_day - start).days + 1))
        shock = None if self.shock_day is None else EconomicShock(day=self.shock_day)
        return LendingConfig(
            loans=self.loans, start_date=first, days=days, seed=self.seed, shock=shock
        )


STEP_IO = "scorehouse_step_io"
"""Resource key of the IO manager of steps that pass values to other steps (scoring fan-out)."""


class StepOutputIOManager(ConfigurableIOManager):
    """Values passed between steps as JSON documents, never pickles.

    Where: ``base`` if given, else ``SCOREHOUSE_STEP_STORAGE``, else ``_dagster/steps`` under an
    object-store lakehouse (so steps on other machines read what a step wrote), else
    ``step_outputs`` in the Dagster home. One document per run, step and output
    (``<run>/<step>/<output>[/<mapping key>].json``). Values must be JSON: the fan-out passes
    small plans and summaries, the data itself stays in Delta tables.
    """

    base: str = ""

    def _location(self) -> str:
        if self.base:
            return self.base
        if os.environ.get("SCOREHOUSE_STEP_STORAGE"):
            return os.environ["SCOREHOUSE_STEP_STORAGE"]
        lake = config.lakehouse_uri()
        if config.is_remote(lake):
            return f"{lake.rstrip('/')}/_dagster/steps"
        home = os.environ.get("DAGSTER_HOME") or str(config.scorehouse_home() / "dagster")
        return str(Path(home) / "step_outputs")

    def _path(self, identifier: list[str]) -> tuple[Any, str]:
        filesystem, root = _filesystem(self._location(), config.storage_options())
        return filesystem, "/".join([root.rstrip("/"), *identifier]) + ".json"

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if context.dagster_type.is_nothing:
            return
        filesystem, path = self._path(context.get_identifier())
        payload = json.dumps(obj, sort_keys=True).encode()
        filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
        with filesystem.open_output_stream(path) as stream:
            stream.write(payload)

    def load_input(self, context: InputContext) -> Any:
        if context.dagster_type.is_nothing:
            return None
        assert context.upstream_output is not None
        filesystem, path = self._path(context.upstream_output.get_identifier())
        with filesystem.open_input_stream(path) as stream:
            return json.loads(stream.read())


def _filesystem(uri: str, options: dict[str, str] | None) -> tuple[Any, str]:
    """A pyarrow filesystem and the path within it for a local folder or an object-store URI."""
    from pyarrow import fs

    if not config.is_remote(uri):
        return fs.LocalFileSystem(), str(Path(uri).resolve())
    parts = urlsplit(uri)
    if parts.scheme not in ("s3", "s3a"):
        filesystem, path = fs.FileSystem.from_uri(uri)
        return filesystem, path
    upper = {k.upper(): v for k, v in (options or {}).items()}
    kwargs: dict[str, Any] = {
        "access_key": upper.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_ACCESS_KEY_ID"),
        "secret_key": upper.get("AWS_SECRET_ACCESS_KEY") or os.environ.get("AWS_SECRET_ACCESS_KEY"),
        "session_token": upper.get("AWS_SESSION_TOKEN"),
        "region": upper.get("AWS_REGION") or os.environ.get("AWS_REGION") or "us-east-1",
    }
    endpoint = upper.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        address = urlsplit(endpoint)
        kwargs |= {"endpoint_override": address.netloc, "scheme": address.scheme or "https"}
    return fs.S3FileSystem(**kwargs), f"{parts.netloc}{parts.path}"


def default_resources() -> dict[str, Any]:
    return {
        STEP_IO: StepOutputIOManager(),
        "lakehouse": LakehouseResource(),
        "landing": LandingResource(),
        "simulator": SimulatorResource(),
        "feature_store": FeatureStoreResource(),
        "model_registry": ModelRegistryResource(),
    }
