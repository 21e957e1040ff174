"""What must hold in a world after a kill -9, checked with readers independent of the code
under test where one exists (deltalake and polars on the table folders, Feast's SDK), and the
outcome a re-run is compared with (the reference run's).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from deltalake import DeltaTable

from feature_repo.config import feature_store
from lakehouse.storage import Lakehouse
from models.lifecycle.registry import CHAMPION, ModelRegistry
from models.scoring.online import SERVED_FIELDS, view_name
from models.scoring.runs import SERVING_ALIAS, current_predictions, latest_runs
from models.usecase import UseCase, load_use_cases

VOLATILE = {
    "_batch_id",
    "_ingested_at",
    "created_timestamp",
    "dagster_run_id",
    "computed_at",
    "scoring_run_id",
    "prediction_id",
    "scored_at",
    "started_at",
    "finished_at",
    "predictions_version",
    "explanations_version",
    "report_path",
    "source_versions",
    "code_version",
}
"""Columns that name a run, a commit or a moment: they differ between any two runs."""


@dataclass
class World:
    """The world's readers, for one use case (open while the world's environment is set)."""

    home: Path
    use_case: UseCase
    lake: Lakehouse

    @classmethod
    def open(cls, home: Path) -> World:
        use_cases = load_use_cases()
        return cls(home, use_cases["churn"], use_cases.lakehouse())


def read_every_table(world: World) -> tuple[dict[str, pl.DataFrame], list[str]]:
    """Every written table at its latest version, read by deltalake and by polars straight
    from its folder (all rows, recorded or not); the problems found."""
    frames, problems = {}, []
    for spec in world.lake.catalog:
        folder = Path(world.lake.table_uri(spec.name))
        log = folder / "_delta_log"
        commits = sorted(int(p.stem) for p in log.glob("*.json") if p.stem.isdigit())
        if not commits:
            if log.exists():
                problems.append(f"{spec.name}: a _delta_log without any commit")
            continue
        try:
            table = DeltaTable(str(folder))
            arrow = table.to_pyarrow_table()
            frame = pl.read_delta(str(folder))
        except Exception as exc:  # any reader failing is the finding
            problems.append(f"{spec.name}: does not open ({type(exc).__name__}: {exc})")
            continue
        if table.version() != commits[-1]:
            problems.append(f"{spec.name}: deltalake reads v{table.version()} of v{commits[-1]}")
        if frame.height != arrow.num_rows:
            problems.append(
                f"{spec.name}: polars reads {frame.height} rows, deltalake {arrow.num_rows}"
            )
        duplicated = frame.select(spec.primary_key).is_duplicated().sum()
        if duplicated:
            problems.append(
                f"{spec.name}: {duplicated} rows share a primary key {spec.primary_key}"
            )
        frames[spec.name] = frame
    return frames, problems


def scoring_problems(world: World, frames: dict[str, pl.DataFrame]) -> list[str]:
    """Every recorded run has exactly its recorded rows in both of its tables, and every one of
    its predictions has its explanation (raw rows: nothing filtered by the reader)."""
    tables = world.use_case.tables.scoring
    runs = frames.get(tables.scoring_runs)
    if runs is None:
        return []
    problems = []
    empty = pl.DataFrame(schema={"prediction_id": pl.String, "scoring_run_id": pl.String})
    for run in runs.iter_rows(named=True):
        predictions, explanations = tables.outputs(run["model_alias"] == SERVING_ALIAS)
        ids = {}
        for table in (predictions, explanations):
            rows = frames.get(table, empty).filter(
                pl.col("scoring_run_id") == run["scoring_run_id"]
            )
            ids[table] = set(rows["prediction_id"])
            if rows.height != run["rows"]:
                problems.append(
                    f"{table}: {rows.height} rows of recorded run {run['scoring_run_id']}, "
                    f"recorded {run['rows']}"
                )
        unexplained = ids[predictions] - ids[explanations]
        if unexplained:
            problems.append(
                f"{predictions}: {len(unexplained)} predictions of recorded run "
                f"{run['scoring_run_id']} have no explanation row"
            )
    return problems


def never_null_features(use_case: UseCase) -> list[str]:
    """``view:feature`` of every service feature the spec never allows to be null."""
    nullable = set(use_case.quality.nullable)
    return [
        f"{view.name}:{name}"
        for view in use_case.features.views
        for name in view.columns
        if name in use_case.features.service_features and name not in nullable
    ]


def online_problems(world: World, active: list[str], scored: list[str]) -> list[str]:
    """Every active entity gets every never-null feature from the online store, and every
    scored entity a score."""
    store = feature_store()
    key = world.use_case.entity.join_key
    problems = []
    features = never_null_features(world.use_case)
    online = store.get_online_features(
        features=features, entity_rows=[{key: e} for e in active]
    ).to_dict()
    for feature in features:
        name = feature.split(":")[1]
        missing = [e for e, v in zip(active, online[name], strict=True) if v is None]
        if missing:
            problems.append(f"online {feature}: no value for {len(missing)} active entities")
    tables = world.use_case.tables.scoring
    scores = store.get_online_features(
        features=[f"{view_name(tables)}:score"], entity_rows=[{key: e} for e in scored]
    ).to_dict()["score"]
    missing = [e for e, v in zip(scored, scores, strict=True) if v is None]
    if missing:
        problems.append(f"online {view_name(tables)}: no score for {len(missing)} scored entities")
    return problems


def active_entities(world: World) -> tuple[list[str], list[str]]:
    """The population of the latest feature day, and the entities the latest day scored."""
    key = world.use_case.entity.join_key
    population = world.lake.read(world.use_case.features.population_table)
    last = population["feature_date"].max()
    active = population.filter(pl.col("feature_date") == last)[key].sort().to_list()
    current = current_predictions(world.lake, world.use_case.tables.scoring).collect()
    latest = current["as_of_date"].max()
    scored = current.filter(pl.col("as_of_date") == latest)[key].sort().to_list()
    return active, scored


def outcome(world: World) -> dict[str, pl.DataFrame]:
    """What a run leaves that an uninterrupted run leaves too: every table's rows as readers
    see them (the current scoring runs only; the latest verdict of a day), without the columns
    naming runs or moments; the online values of every active entity; the champion model."""
    tables = world.use_case.tables
    found: dict[str, pl.DataFrame] = {}
    current = current_predictions(world.lake, tables.scoring).collect()
    for spec in world.lake.catalog:
        name = spec.name
        if not world.lake.exists(name) or name == tables.decisions:
            continue  # decisions: a killed promotion may leave one more (compared as the model)
        if name == tables.scoring.predictions:
            frame = current
        elif name == tables.scoring.explanations:
            frame = world.lake.read(name).join(
                current.select("prediction_id"), on="prediction_id", how="semi"
            )
        elif name == tables.scoring.scoring_runs:
            frame = latest_runs(world.lake, tables.scoring).collect()
        elif name == tables.monitoring.verdicts:
            frame = (
                world.lake.read(name)
                .sort("computed_at")
                .group_by("as_of_date")
                .agg(pl.all().last())
            )
        else:
            frame = world.lake.read(name)
        found[name] = _canonical(frame)
    found["online"] = _canonical(online_values(world))
    found["champion"] = pl.DataFrame({"model_sha256": [champion_digest(world)]})
    return found


def online_values(world: World) -> pl.DataFrame:
    """The online store's values of every active entity: the service's features and the
    served prediction fields (but the run id)."""
    active, _ = active_entities(world)
    tables = world.use_case.tables.scoring
    features = [f"{v.name}:{c}" for v in world.use_case.features.views for c in v.columns]
    served = [f"{view_name(tables)}:{f}" for f in SERVED_FIELDS if f != "scoring_run_id"]
    key = world.use_case.entity.join_key
    values = feature_store().get_online_features(
        features=[*features, *served], entity_rows=[{key: e} for e in active]
    )
    return pl.from_pandas(values.to_df())


def champion_digest(world: World) -> str:
    """The SHA-256 of the champion's booster (xgboost JSON: byte-identical for equal training)."""
    registry = ModelRegistry(world.use_case.model_name)
    champion = registry.alias(CHAMPION)
    assert champion is not None, "no champion"
    raw = registry.load_booster(champion.version).save_raw("json")
    return hashlib.sha256(bytes(raw)).hexdigest()


def _canonical(frame: pl.DataFrame) -> pl.DataFrame:
    kept = frame.drop([c for c in frame.columns if c in VOLATILE])
    sortable = [c for c, t in kept.schema.items() if not isinstance(t, pl.List | pl.Struct)]
    return kept.select(sorted(kept.columns)).sort(sorted(sortable), nulls_last=True)


def save_outcome(found: dict[str, pl.DataFrame], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in found.items():
        frame.write_parquet(folder / f"{name}.parquet")


def load_outcome(folder: Path) -> dict[str, pl.DataFrame]:
    return {p.stem: pl.read_parquet(p) for p in sorted(folder.glob("*.parquet"))}


def differences(got: dict[str, pl.DataFrame], want: dict[str, pl.DataFrame]) -> list[str]:
    """Each table whose content differs from the reference's, with how."""
    problems = []
    for name in sorted(set(got) | set(want)):
        if name not in got or name not in want:
            problems.append(f"{name}: only in the {'reference' if name in want else 're-run'}")
            continue
        a, b = got[name], want[name]
        if a.schema != b.schema:
            problems.append(f"{name}: schema {a.schema} != reference {b.schema}")
        elif not a.equals(b):
            extra = (
                a.join(b, on=a.columns, how="anti", nulls_equal=True).height
                if _joinable(a)
                else "?"
            )
            problems.append(f"{name}: {a.height} rows vs reference {b.height} ({extra} differ)")
    return problems


def _joinable(frame: pl.DataFrame) -> bool:
    return not any(isinstance(t, pl.List | pl.Struct) for t in frame.schema.values())
