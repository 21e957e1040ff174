"""Every Dagster definition of a use case, generated from its spec (asset factories).

Per source system (shared by the use cases built on it): the simulated landing asset (simulated
sources only), ``bronze/*`` and ``silver/*``, and the GX checks of its silver tables. Per use
case ``<uc>``: the feature tables and labels, ``feast/<uc>_online_store``, the training set, model
and evaluation (a candidate) and its model card, the promotion gate, batch scoring (champion and
shadow) and online predictions, monitoring, and the evidence its spec asks for (LIME agreement,
fairness); jobs ``<uc>_ingest_and_features``, ``<uc>_daily_pipeline`` (scheduled),
``<uc>_weekly_retrain`` (scheduled; also launched by the ``<uc>_monitoring_retrain`` sensor: it
only produces a candidate), ``<uc>_promotion_gate`` (scheduled; also launched by
``<uc>_promotion_gate_sensor``) and ``<uc>_training_set``.
One ``feast/registry`` asset applies every use case's Feast definitions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from dagster import (
    AssetChecksDefinition,
    AssetKey,
    AssetsDefinition,
    AssetSelection,
    DefaultScheduleStatus,
    Definitions,
    ScheduleDefinition,
    SensorDefinition,
    build_schedule_from_partitioned_job,
    define_asset_job,
)
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition,
)

from models.usecase import UseCase, UseCases
from orchestration.evidence.assets import evidence_assets, model_card_asset
from orchestration.features.assets import feature_assets, label_asset
from orchestration.features.feast_assets import (
    REGISTRY_KEY,
    feast_online_store,
    feast_registry,
    training_set,
    training_set_key,
)
from orchestration.ingest.assets import source_assets
from orchestration.monitoring.assets import monitoring_assets
from orchestration.monitoring.sensor import retrain_schedule, retrain_sensor
from orchestration.profiles import executor_definition, load_profile
from orchestration.resources import default_resources
from orchestration.scoring.assets import scoring_assets
from orchestration.settings import WORLD
from orchestration.sources.assets import simulated_landing
from orchestration.training.assets import training_assets
from orchestration.training.checks import quality_checks
from orchestration.training.gate import gate_asset, gate_schedule, gate_sensor


@dataclass
class Parts:
    """Definitions being collected (assets and checks by key, so shared ones come once)."""

    assets: dict[tuple, AssetsDefinition] = field(default_factory=dict)
    checks: dict[str, AssetChecksDefinition] = field(default_factory=dict)
    jobs: list[UnresolvedAssetJobDefinition] = field(default_factory=list)
    schedules: list[ScheduleDefinition] = field(default_factory=list)
    sensors: list[SensorDefinition] = field(default_factory=list)

    def add(self, assets: Iterable[AssetsDefinition]) -> list[AssetKey]:
        keys = []
        for definition in assets:
            first = next(iter(definition.keys))
            self.assets.setdefault(tuple(first.path), definition)
            keys += list(definition.keys)
        return keys


def _daily_schedule(job: UnresolvedAssetJobDefinition, cron: str, name: str) -> ScheduleDefinition:
    """The partitioned job's schedule at the spec's ``M H * * *`` (daily, UTC)."""
    minute, hour, *rest = cron.split()
    if rest != ["*", "*", "*"] or not (minute.isdigit() and hour.isdigit()):
        raise ValueError(f"daily schedule {cron!r}: expected 'M H * * *'")
    return build_schedule_from_partitioned_job(
        job,
        name=name,
        hour_of_day=int(hour),
        minute_of_hour=int(minute),
        default_status=DefaultScheduleStatus.STOPPED,
    )


def add_use_case(parts: Parts, use_case: UseCase) -> None:
    """Every definition of one use case (and of its source, once)."""
    source = use_case.source
    landing = []
    if source.simulator is not None and WORLD.simulate:
        landing = parts.add([simulated_landing(source)])
    ingest = parts.add(source_assets(source))
    features = parts.add([feature_assets(use_case), label_asset(use_case)])
    online = parts.add([feast_online_store(use_case)])
    built = parts.add([training_set(use_case)])
    trained = parts.add(training_assets(use_case))
    gated = parts.add([gate_asset(use_case, deps=[trained[-1]])])
    scored = parts.add(scoring_assets(use_case))
    monitored = parts.add(monitoring_assets(use_case))
    evidence = parts.add(evidence_assets(use_case))
    card = parts.add([model_card_asset(use_case)])
    for table, check in quality_checks(use_case).items():
        parts.checks.setdefault(table, check)

    name = use_case.name
    ingest_and_features = [*landing, *ingest, *features, *online]
    jobs = {
        "ingest_and_features": (
            ingest_and_features,
            "Ingest the landing files, build features and labels, refresh online features.",
        ),
        "daily_pipeline": (
            [*ingest_and_features, *scored, *monitored, *evidence],
            "One day end to end: ingest → features → online features → batch scoring with the "
            "champion → online predictions → monitoring (drift, diagnosis, performance, report).",
        ),
        "weekly_retrain": (
            # The registry first: on a fresh home the training set needs its feature service.
            [REGISTRY_KEY, *built, *trained, *card],
            "Rebuild the training set, validate it (blocking GX check), train and register a "
            "candidate and evaluate it against the champion on its out-of-time rows. Nothing "
            "is promoted here: the promotion gate decides.",
        ),
        "promotion_gate": (
            gated,
            "The promotion gate: a candidate into shadow, a shadow model promoted or rejected on "
            "paired matured outcomes (bootstrap intervals), every move recorded.",
        ),
        "training_set": (
            [REGISTRY_KEY, training_set_key(use_case)],
            "Register the feature repo and build the training set from matured labels.",
        ),
    }
    made = {
        key: define_asset_job(
            f"{name}_{key}",
            selection=AssetSelection.assets(*assets),
            description=description,
            tags={"scorehouse/use_case": name},
        )
        for key, (assets, description) in jobs.items()
    }
    parts.jobs += made.values()
    schedules = use_case.schedules
    parts.schedules.append(
        _daily_schedule(made["daily_pipeline"], schedules.daily, f"{name}_daily_schedule")
    )
    parts.schedules.append(retrain_schedule(use_case, f"{name}_weekly_retrain"))
    parts.schedules.append(gate_schedule(use_case, made["promotion_gate"]))
    parts.sensors.append(retrain_sensor(use_case, f"{name}_weekly_retrain"))
    parts.sensors.append(gate_sensor(use_case, f"{name}_promotion_gate"))


def build_definitions(use_cases: UseCases) -> Definitions:
    """The code location: every use case side by side, one Feast registry asset for all."""
    parts = Parts()
    for use_case in use_cases.values():
        add_use_case(parts, use_case)
    parts.add([feast_registry(use_cases.values())])
    return Definitions(
        assets=list(parts.assets.values()),
        asset_checks=list(parts.checks.values()),
        jobs=parts.jobs,
        schedules=parts.schedules,
        sensors=parts.sensors,
        resources=default_resources(),
        executor=executor_definition(load_profile()),
    )
