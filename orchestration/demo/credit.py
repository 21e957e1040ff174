"""The credit demo: a lender's book through an economic shock, run as its schedules and sensors
would run it, explainable at every step.

The lending world (``docs/lending.md``) runs 950 days: a seasoned book of loans with monthly
statements, 12-month default outcomes, and on ``shock_day`` (540) a downturn — unemployment and
rates up, incomes down and utilisation climbing month by month (a population shift), and a
debt-to-income effect on default that doubles (a concept shift). A clock
(``orchestration.demo.clock``) walks it:

1. history: ``ingest_and_features`` up to the first model's day (500), a first candidate
   (``weekly_retrain``) which the gate promotes on its out-of-time rows;
2. every 4 weeks: the next half-year delivery is ingested when the clock reaches it; the day
   is scored by the champion and any model in shadow, its online predictions written and
   monitored (``daily_pipeline``, the assets after ingestion; the regulator's evidence — LIME
   beside SHAP, fairness by group — every 16 weeks and on a new champion's first day), then a
   tick of the retrain sensor and of the gate sensor, and an app's lookup of every scored loan
   (the scoring service's cached lookup).
   Nothing is seen early: a retrain learns the labels matured by its ``as_of`` day, monitoring
   only the outcomes of its partition;
3. the last days one by one, as the daily schedule runs them (the whole job, evidence included).

What it shows: the shock arriving as input drift with healthy pipeline checks (a population
change, not a fault); the drift retrain, trained on the newest 16 weeks of matured labels
(``training.window_days``, outcomes running into the downturn), admitted into shadow and
scored beside the champion; since no 12-month outcome matures within a shadow period, the gate
decides on out-of-time rows after 28 days as the credit policy allows, where the champion's
ranking and calibration have fallen and the recent-window model's hold (a concept change); a
later drift candidate rejected for no gain; the champion's matured vintages a year on, with
defaults far above its PDs; the new champion's model card; and after every run, a score for
every scored loan and reasons for every adverse decision online (no app lookup finds none).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

from dagster import DagsterInstance

from lakehouse import config
from orchestration.demo.clock import (
    Clock,
    daily_tick,
    print_lifecycle,
    print_verdict,
    retrain,
    run_job,
    scored_assets,
)
from orchestration.runs import partition_range

if TYPE_CHECKING:
    from lakehouse.storage import Lakehouse
    from models.usecase import UseCase

USE_CASE = "credit"
FIRST_MODEL_DAY = 500
"""The first model's day: 12-month labels matured for as-of dates 35..135."""
EVERY_DAYS = 28
"""A scored day every 4 weeks."""
DELIVERY_DAYS = 168
"""The landing files of this many days are ingested in one run when the clock needs them."""
EVIDENCE_EVERY = 4
"""LIME and fairness evidence on every fourth scored day (and a new champion's first)."""
DAILY_DAYS = 2
"""The last days run one by one by the daily schedule."""


def walk(instance: DagsterInstance, clock: Clock) -> None:
    """Walk the lending world (see the module docstring) and print what the loop did."""
    from orchestration.settings import WORLD

    first, last = WORLD.start_of("lending"), WORLD.end_of("lending")
    shock = None if WORLD.shock_day is None else first + timedelta(days=WORLD.shock_day)
    print(
        f"[scorehouse] credit world: {WORLD.loans} open loans, {WORLD.days_of('lending')} days "
        f"({first}..{last}), seed {WORLD.seed}; economic shock from {shock or 'never'} (day "
        f"{WORLD.shock_day}); home {config.scorehouse_home()}",
        flush=True,
    )
    _claim_landing(last)
    day = first + timedelta(days=FIRST_MODEL_DAY)
    ingested = day
    run_job(instance, USE_CASE, "ingest_and_features", partition_range(first, day))
    retrain(instance, USE_CASE, day)
    clock.sensor(f"{USE_CASE}_promotion_gate_sensor")  # the first candidate → champion
    daily_from = last - timedelta(days=DAILY_DAYS - 1)
    scored, evidenced_for, announced = 0, None, False
    while day + timedelta(days=EVERY_DAYS) < daily_from:
        day += timedelta(days=EVERY_DAYS)
        if ingested < day:  # the next delivery
            through = min(ingested + timedelta(days=DELIVERY_DAYS), daily_from - timedelta(days=1))
            run_job(
                instance,
                USE_CASE,
                "ingest_and_features",
                partition_range(ingested + timedelta(days=1), through),
            )
            ingested = through
        if shock is not None and day >= shock and not announced:
            announced = True
            print(f"[scorehouse] credit {shock}: the economy turns (unemployment and rates up)")
        champion = _champion()
        evidence = scored % EVIDENCE_EVERY == 0 or champion != evidenced_for
        if evidence:
            evidenced_for = champion
        run_job(
            instance,
            USE_CASE,
            "daily_pipeline",
            partition_range(day, day),
            asset_selection=scored_assets(USE_CASE, evidence=evidence),
        )
        scored += 1
        clock.sensor(f"{USE_CASE}_monitoring_retrain")
        clock.sensor(f"{USE_CASE}_promotion_gate_sensor")
        print_verdict(USE_CASE, day)
        print(f"[scorehouse]   {app_lookups(day)}", flush=True)
    if ingested + timedelta(days=1) < daily_from:
        run_job(
            instance,
            USE_CASE,
            "ingest_and_features",
            partition_range(ingested + timedelta(days=1), daily_from - timedelta(days=1)),
        )
    for offset in range(DAILY_DAYS):
        today = daily_from + timedelta(days=offset)
        daily_tick(clock, USE_CASE, today)
        print_verdict(USE_CASE, today)
        print(f"[scorehouse]   {app_lookups(today)}", flush=True)
    print_diagnosis(shock)
    print_lifecycle(USE_CASE, clock)
    print_card()


def _champion() -> str | None:
    from models.lifecycle.gate import read_state
    from models.usecase import load_use_cases
    from orchestration.resources import ModelRegistryResource

    return read_state(ModelRegistryResource().get(load_use_cases()[USE_CASE])).champion


def app_lookups(day: date) -> str:
    """What an app finds for every loan scored on ``day``, read as the scoring service's cached
    lookup reads it (``OnlineLookup.prediction``): a score each, and reasons for each adverse
    decision (a loan whose every factor lowers its risk has none to give)."""
    import polars as pl

    from models.usecase import load_use_cases
    from orchestration.resources import FeatureStoreResource
    from orchestration.serving.online import OnlineLookup

    use_cases = load_use_cases()
    use_case = use_cases[USE_CASE]
    tables, adverse = use_case.tables.scoring, use_case.scoring.decision_above
    ids = (
        use_cases.lakehouse()
        .scan(tables.predictions)
        .filter(pl.col("as_of_date") == day)
        .select(tables.join_key)
        .unique()
        .collect()[tables.join_key]
        .to_list()
    )
    lookup = OnlineLookup(FeatureStoreResource().get(), use_case)
    unscored = unexplained = adverse_count = 0
    for entity_id in ids:
        row = lookup.prediction(entity_id)
        values = row.values if row is not None else {}
        unscored += values.get("score") is None
        adverse_count += values.get("decision") == adverse
        unexplained += values.get("decision") == adverse and not values.get("reason_codes")
    return (
        f"app lookups: {len(ids)} loans scored on {day}: {unscored} without a score; "
        f"{adverse_count} {adverse} decisions, {unexplained} of them without reasons"
    )


def print_diagnosis(shock: date | None) -> None:
    """The shock as monitoring and the gate saw it: input drift with healthy pipeline checks (a
    population change), and on matured outcomes the champion's ranking and calibration falling
    away where a recent-window model holds (a concept change)."""
    import polars as pl

    from models.usecase import load_use_cases

    use_cases = load_use_cases()
    use_case, lake = use_cases[USE_CASE], use_cases.lakehouse()
    verdicts = lake.read(use_case.tables.monitoring.verdicts).sort("as_of_date", "computed_at")
    faults = verdicts.filter(pl.col("verdict") == "pipeline_fault").height
    print(f"\n[scorehouse] credit: diagnosis of the shock of {shock}")
    drifted = verdicts.filter(pl.col("verdict") == "population_drift")
    if drifted.height:
        row = drifted.row(0, named=True)
        print(
            f"  population change from {row['as_of_date']}, pipeline checks healthy ({faults} "
            f"faults in {verdicts.height} monitoring runs): " + "; ".join(row["evidence"][:3])
        )
    for line in concept_lines(lake, use_case):
        print(f"  {line}")


def concept_lines(lake: Lakehouse, use_case: UseCase) -> list[str]:
    """Concept-change evidence: the first retrain's out-of-time comparison (the newest matured
    outcomes at its day) and the champion's matured vintages (ranking, calibration)."""
    import json

    import polars as pl

    lines = []
    decisions = lake.read(use_case.tables.decisions).sort("decided_at")
    judged = decisions.filter(
        pl.col("decision").is_in(["promote", "reject"]) & (pl.col("trigger") != "manual")
    )
    for row in judged.head(1).iter_rows(named=True):
        evidence = json.loads(row["evidence"])
        if evidence.get("kind") != "out-of-time":
            continue
        old, new = evidence["champion"], evidence["candidate"]
        lines.append(
            f"concept change: on the {evidence['rows']} newest matured outcomes at v"
            f"{row['challenger_version']}'s retrain (12-month windows running into the downturn) "
            f"champion v{row['champion_version']} ranks at ROC-AUC {old['roc_auc']:.3f}, ECE "
            f"{old['ece']:.3f}; the recent-window model {new['roc_auc']:.3f}, ECE {new['ece']:.3f}"
            f" → {row['decision']}"
        )
    performance = lake.read(use_case.tables.monitoring.performance).filter(
        pl.col("model_alias") == "champion"
    )
    if performance.height:
        scores = (
            lake.scan(use_case.tables.scoring.predictions)
            .group_by("as_of_date")
            .agg(pl.col("score").mean().alias("mean_pd"))
            .collect()
        )
        vintages = performance.join(scores, on="as_of_date", how="left").sort("as_of_date")
        for r in vintages.iter_rows(named=True):
            lines.append(
                f"matured vintage {r['as_of_date']} (v{r['model_version']}): ROC-AUC "
                f"{r['roc_auc']:.3f} (training {r['training_roc_auc']:.3f}), default rate "
                f"{r['positives'] / r['labelled']:.1%} vs mean PD {r['mean_pd']:.1%}, ECE "
                f"{r['ece']:.3f}"
            )
    return lines


def print_card() -> None:
    """The documentation pack of the serving champion, with its promotion evidence."""
    from models.card.publish import write_card
    from models.usecase import load_use_cases
    from orchestration.resources import ModelRegistryResource

    use_cases = load_use_cases()
    use_case = use_cases[USE_CASE]
    version = _champion()
    if version is None:
        print("[scorehouse] credit: no champion, no model card")
        return
    files = write_card(
        ModelRegistryResource().get(use_case), use_cases.lakehouse(), use_case, version
    )
    print(f"\n[scorehouse] credit: model card of champion v{version}: {files.html}")


def _claim_landing(last: date) -> None:
    """Refuse up front a home whose landing folder holds your files or another world."""
    from lakehouse.sources.claim import claim_landing
    from lakehouse.sources.lending.contract import LENDING_FEEDS
    from orchestration.resources import LandingResource, SimulatorResource

    world = SimulatorResource().lending_config(last).identity()
    claim_landing(LandingResource().get(), "lending", LENDING_FEEDS, world)
