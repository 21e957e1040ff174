"""``scorehouse init``: a first spec for your own data, to read, adjust and keep.

Two kinds (``docs/own-data.md``):

* ``snapshot``: one row per entity with a target column and no dates (a cleaned data set). The
  features are the other columns, the label is the target, the split is a holdout by entity.
* ``events``: an event log (e.g. transactions: an entity id, a timestamp, amounts). The features
  are 7/30/90-day windows of counts and amounts, the label is "no event in the next 30 days".

With ``data`` the columns and their types are read from the file (CSV, JSON lines or Parquet):
text columns with few distinct values become categorical features with their vocabulary, an
all-distinct text column is the key. Every guess is written into the spec, where you can change
it; ``scorehouse spec check`` validates the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

import polars as pl
import yaml

Kind = Literal["snapshot", "events"]
KINDS: tuple[Kind, ...] = ("snapshot", "events")
MAX_CATEGORIES = 50
"""A text column with at most this many distinct values is categorical, else it is refused
as a feature (free text cannot be coded)."""
PROMOTION = {"first_model_max_calibration_error": 0.1, "max_calibration_error": 0.1}
"""A first model is promoted with an expected calibration error up to 0.1: small holdouts are
noisy (tighten it once you know your data)."""
TARGET_NAMES = ("churn", "churned", "target", "label", "default", "y", "outcome")


class ScaffoldError(ValueError):
    """The data cannot become a spec (no key, no target, an unusable column)."""


@dataclass(frozen=True)
class Columns:
    """What the data looks like: typed columns, the key, the target, the vocabularies."""

    types: dict[str, str]
    key: str
    target: str | None
    timestamp: str | None
    categories: dict[str, list[str]]
    positive: Any = None
    entity: str | None = None
    """Events: the entity the events belong to (snapshot: the key itself)."""
    non_negative: tuple[str, ...] = ()
    """Numeric columns never negative in the sample (their spec bounds become ``[0, null]``)."""


def read_sample(path: Path) -> pl.DataFrame:
    """The file as polars reads it (types inferred)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pl.read_csv(path, infer_schema_length=10_000, try_parse_dates=True)
    if suffix in (".jsonl", ".ndjson"):
        return pl.read_ndjson(path)
    if suffix == ".parquet":
        return pl.read_parquet(path)
    raise ScaffoldError(f"{path.name}: expected a .csv, .jsonl or .parquet file")


def infer_columns(
    frame: pl.DataFrame,
    kind: Kind,
    *,
    key: str | None = None,
    target: str | None = None,
    timestamp: str | None = None,
    entity: str | None = None,
) -> Columns:
    """Types, key, target and vocabularies of a data sample (see the module docstring)."""
    types: dict[str, str] = {}
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Datetime):
            types[name] = "Timestamp"
        elif dtype == pl.Date:
            types[name] = "Date"
        elif dtype.is_integer():
            types[name] = "Int64"
        elif dtype.is_float():
            types[name] = "Float64"
        elif dtype == pl.String or dtype == pl.Boolean:
            types[name] = "String"
        else:
            raise ScaffoldError(f"column {name!r} has type {dtype}: not a supported column type")
    if kind == "events":
        timestamp = timestamp or _first(frame, lambda c: types[c] in ("Timestamp", "Date"))
        if timestamp is None:
            raise ScaffoldError("an event log needs a date or timestamp column (--timestamp)")
        entity = entity or _first(
            frame, lambda c: types[c] == "String" and frame[c].n_unique() < frame.height
        )
        key = key or _first(frame, lambda c: frame[c].n_unique() == frame.height and c != entity)
        if entity is None or key is None:
            raise ScaffoldError("an event log needs an entity id and an event id (--key)")
    else:
        key = key or _first(frame, lambda c: frame[c].n_unique() == frame.height)
        if key is None:
            raise ScaffoldError("no column is unique per row: name the key with --key")
        target = target or next((c for c in frame.columns if c.lower() in TARGET_NAMES), None)
        if target is None:
            raise ScaffoldError(f"no target column found (one of {TARGET_NAMES}): use --target")
        if target not in frame.columns:
            raise ScaffoldError(f"target column {target!r} is not in the data")
    for identifier in (key, entity):
        if identifier is not None:
            types[identifier] = "String"  # ids are text: 00123 and 123 are different customers
    categories = {}
    for name, kind_of in types.items():
        if kind_of != "String" or name in (key, entity, target):
            continue
        values = sorted(
            str(v).lower() if isinstance(v, bool) else v
            for v in frame[name].unique().to_list()
            if v is not None
        )
        if len(values) > MAX_CATEGORIES:
            raise ScaffoldError(
                f"column {name!r} has {len(values)} distinct texts (more than {MAX_CATEGORIES}): "
                "free text cannot be a feature; drop it from the data"
            )
        categories[name] = values
    positive = _positive(frame, target) if target else None
    non_negative = tuple(
        c
        for c, t in types.items()
        if t in ("Int64", "Float64") and c != target and (frame[c].min() or 0) >= 0  # type: ignore[operator]
    )
    return Columns(types, key, target, timestamp, categories, positive, entity, non_negative)


def _first(frame: pl.DataFrame, test: Any) -> str | None:
    return next((c for c in frame.columns if test(c)), None)


def _positive(frame: pl.DataFrame, target: str) -> Any:
    values = sorted(str(v) for v in frame[target].drop_nulls().unique().to_list())
    if len(values) != 2:
        raise ScaffoldError(
            f"target {target!r} has {len(values)} distinct values {values[:5]}: a binary label "
            "needs exactly two"
        )
    for candidate in ("1", "Yes", "yes", "True", "true", "Y"):
        if candidate in values:
            return candidate
    return values[1]


def scaffold(name: str, kind: Kind, columns: Columns, *, start_date: date) -> dict[str, Any]:
    """The spec (as YAML-ready data) of ``name`` for data shaped like ``columns``."""
    if kind not in KINDS:
        raise ScaffoldError(f"kind must be one of {KINDS}, got {kind!r}")
    feed = f"{name}_{'events' if kind == 'events' else 'records'}"
    feed_spec: dict[str, Any] = {
        "format": "csv",
        "description": f"Your {kind} data for {name}.",
        "key": [columns.key],
        "columns": columns.types,
    }
    nullable = [c for c in columns.types if c not in (columns.key, columns.target)]
    if columns.categories:
        feed_spec["categories"] = columns.categories
    if columns.non_negative:
        feed_spec["bounds"] = {c: [0, None] for c in columns.non_negative}
    if kind == "events":
        assert columns.entity is not None
        return _events_spec(name, feed, feed_spec, columns, start_date, columns.entity)
    features = [c for c in columns.types if c not in (columns.key, columns.target)]
    feed_spec["nullable"] = nullable
    return {
        "name": name,
        "description": f"Will {columns.target} be {columns.positive!r}? (snapshot data)",
        "source": {"name": name, "start_date": start_date, "feeds": {feed: feed_spec}},
        "entity": {"name": f"{name}_entity", "join_key": columns.key},
        "features": {
            "builder": "snapshot",
            "options": {"table": feed, "columns": features},
            "ttl_days": 30,
            "service": f"{name}_v1",
        },
        "label": {
            "builder": "column",
            "column": "label",
            "horizon_days": 0,
            "maturity_days": 0,
            "options": {"table": feed, "target": columns.target, "positive": columns.positive},
        },
        "training": {"history_days": 0, "every_days": 1},
        "model": {"split": "holdout", "params": {"min_rows": 200}},
        "reasons": _reasons(name, features),
        "scoring": {"bands": {"low": 0.0, "medium": 0.3, "high": 0.6}, "decision_threshold": 0.5},
        "promotion": PROMOTION,
        "quality": {"label_rate_error": [0.001, 0.999], "label_rate_warn": [0.01, 0.9]},
    }


def _events_spec(
    name: str,
    feed: str,
    feed_spec: dict[str, Any],
    columns: Columns,
    start_date: date,
    entity: str,
) -> dict[str, Any]:
    assert columns.timestamp is not None
    amounts = [
        c
        for c, t in columns.types.items()
        if t in ("Int64", "Float64") and c not in (columns.key, entity)
    ]
    feed_spec["timestamp"] = columns.timestamp
    feed_spec["nullable"] = [c for c in columns.types if c not in (columns.key, entity)]
    windows = [7, 30, 90]
    features = [f"events_count_{w}d" for w in windows]
    features += [f"{a}_{agg}_{w}d" for w in windows for a in amounts for agg in ("sum", "mean")]
    features += [f"active_days_{w}d" for w in windows] + ["days_since_last_event"]
    return {
        "name": name,
        "description": f"Will a {entity} stay inactive for the next 30 days? (event log)",
        "source": {"name": name, "start_date": start_date, "feeds": {feed: feed_spec}},
        "entity": {"name": f"{name}_entity", "join_key": entity},
        "features": {
            "builder": "events",
            "options": {
                "table": feed,
                "timestamp": columns.timestamp,
                "windows": windows,
                "aggregate": {a: ["sum", "mean"] for a in amounts},
            },
            "views": {f"{name}_activity": {"features": features}},
            "ttl_days": 3,
            "service": f"{name}_v1",
        },
        "label": {
            "builder": "inactivity",
            "column": "inactive_30d",
            "horizon_days": 30,
            "maturity_days": 30,
            "options": {"table": feed, "timestamp": columns.timestamp, "active_days": 90},
        },
        "training": {"history_days": 30, "every_days": 7},
        "model": {
            "split": "time",
            "params": {"min_rows": 200, "validation_days": 14, "test_days": 14},
        },
        "reasons": _reasons(name, features),
        "scoring": {"bands": {"low": 0.0, "medium": 0.2, "high": 0.5}, "decision_threshold": 0.3},
        "promotion": PROMOTION,
        "quality": {
            "label_rate_error": [0.001, 0.999],
            "label_rate_warn": [0.01, 0.9],
            # A mean over a window without events is null: by definition, not a fault.
            "nullable": [f for f in features if "_mean_" in f],
            "non_negative": False,
        },
    }


def _reasons(name: str, features: list[str]) -> dict[str, dict[str, str]]:
    """One placeholder reason per feature: review the texts before apps show them."""
    prefix = "".join(part[0] for part in name.split("_")).upper()[:3] or "R"
    return {
        feature: {"code": f"{prefix}{i:02d}", "text": f"{feature.replace('_', ' ')}"}
        for i, feature in enumerate(features, start=1)
    }


def render(spec: dict[str, Any]) -> str:
    """The spec as YAML, with a header saying where it came from."""
    header = (
        "# Generated by `scorehouse init`: every field is a guess from your data. Review it\n"
        "# (especially the reason texts apps will show), then `scorehouse spec check`.\n"
        "# Fields: docs/use-cases.md; a walk-through: docs/own-data.md.\n"
    )
    return header + yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=96)
