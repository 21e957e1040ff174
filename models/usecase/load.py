"""Read a use-case spec file (YAML) into a ``UseCase``, refusing what cannot work.

Every refusal is a ``SpecError`` naming the file, the field (``features.views.x.features``) and
the rule that failed, before anything is written anywhere. Unknown keys are refused too: a typo
must not silently fall back to a default.
"""

from __future__ import annotations

import collections.abc
import csv
import dataclasses
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
import yaml

from lakehouse.features.builders import FEATURE_BUILDERS, LABEL_BUILDERS, BuilderError
from lakehouse.features.labels import LabelDefinition
from lakehouse.features.views import FeatureView, Ratio
from lakehouse.ingest.sources import BUILTIN_SOURCES
from lakehouse.ingest.tables import SourceTables
from lakehouse.sources.contract import FILE_FORMATS, LandingSource
from models.encoding import FeatureEncoding
from models.lifecycle.evidence import BusinessValue
from models.lifecycle.policy import PromotionPolicy
from models.monitoring.policy import (
    DiagnosisThresholds,
    DriftThresholds,
    MonitoringSettings,
    RetrainPolicy,
)
from models.scoring.policy import Reason, ScoringPolicy
from models.training.params import ModelDesign, TrainingParams
from models.usecase.spec import (
    Entity,
    Evaluation,
    ExplanationSpec,
    FairnessSpec,
    FeatureSpec,
    LabelSpec,
    QualitySpec,
    Schedules,
    SourceSpec,
    TrainingSetSpec,
    UseCase,
)

T = TypeVar("T")
TYPES: dict[str, pl.DataType] = {
    "String": pl.String(),
    "Int64": pl.Int64(),
    "Float64": pl.Float64(),
    "Date": pl.Date(),
    "Timestamp": pl.Datetime("us", "UTC"),
}
"""Column types a spec may name (``Timestamp``: UTC, microseconds)."""


class SpecError(ValueError):
    """A use-case spec breaks a rule; the message names the file, the field and the rule."""

    def __init__(self, path: Path | str, field: str, rule: str) -> None:
        self.path, self.field, self.rule = str(path), field, rule
        super().__init__(f"use-case spec {path}: {field or '(top level)'}: {rule}")


class _Fields:
    """A mapping read with a field path, so every error says where it is."""

    def __init__(self, path: Path, field: str, raw: object) -> None:
        self.path, self.field = path, field
        if not isinstance(raw, Mapping):
            raise SpecError(path, field, f"must be a mapping, got {type(raw).__name__}")
        self.raw: dict[str, Any] = dict(raw)
        self._read: set[str] = set()

    def error(self, key: str | None, rule: str) -> SpecError:
        return SpecError(self.path, self._at(key), rule)

    def _at(self, key: str | None) -> str:
        if key is None:
            return self.field
        return f"{self.field}.{key}" if self.field else key

    def get(self, key: str, default: Any = None) -> Any:
        self._read.add(key)
        return self.raw.get(key, default)

    def require(self, key: str) -> Any:
        self._read.add(key)
        if key not in self.raw or self.raw[key] is None:
            raise self.error(key, "is required")
        return self.raw[key]

    def text(self, key: str, default: str | None = None) -> str:
        """A string field; required unless ``default`` is given (which may be empty)."""
        if default is not None and self.raw.get(key) is None:
            self._read.add(key)
            return default
        value = self.require(key)
        if not isinstance(value, str) or not value:
            raise self.error(key, f"must be a non-empty string, got {value!r}")
        return value

    def integer(self, key: str, default: int) -> int:
        value = self.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.error(key, f"must be an integer, got {value!r}")
        return value

    def names(self, key: str, default: list[str] | None = None) -> list[str]:
        value = self.get(key, default if default is not None else [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error(key, f"must be a list of names, got {value!r}")
        return value

    def sub(self, key: str, default: object = None) -> _Fields:
        value = self.get(key, {} if default is None else default)
        return _Fields(self.path, self._at(key), value)

    def done(self) -> None:
        """Refuse keys nobody read (typos, fields that do not exist)."""
        unknown = sorted(set(self.raw) - self._read)
        if unknown:
            raise self.error(None, f"unknown keys {unknown}")

    @contextmanager
    def reading(self, key: str | None) -> Iterator[None]:
        """Turn a ``ValueError`` of a constructor into a ``SpecError`` at ``key``."""
        try:
            yield
        except SpecError:
            raise
        except (ValueError, TypeError, BuilderError) as exc:
            raise self.error(key, str(exc)) from exc


def load_spec(path: Path | str, *, start_date: date | None = None) -> UseCase:
    """Read and validate the spec file at ``path``."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SpecError(path, "", "file not found") from None
    except yaml.YAMLError as exc:
        raise SpecError(path, "", f"not valid YAML ({exc})") from exc
    return parse_spec(raw, path, start_date=start_date)


def parse_spec(raw: object, path: Path, *, start_date: date | None = None) -> UseCase:
    """Validate an already parsed spec (``path`` names it in errors and anchors relative files)."""
    top = _Fields(path, "", raw)
    name = top.text("name")
    if not name.isidentifier() or name != name.lower():
        raise top.error("name", f"must be a lower-case identifier, got {name!r}")
    source = _source(top, name)
    entity = _entity(top.sub("entity"))
    features = _features(top.sub("features"), source, entity)
    label = _label(top.sub("label"), source, entity, name)
    model = top.sub("model")
    params = _dataclass(model.sub("params"), TrainingParams)
    design = _design(model, features, label, entity)
    model.done()
    reasons = _reasons(top, features)
    protected = top.names("protected_attributes")
    _check_protected(top, protected, features, reasons)
    scoring = _dataclass(top.sub("scoring"), ScoringPolicy)
    use_case = UseCase(
        name=name,
        description=top.text("description", ""),
        source=source,
        entity=entity,
        features=features,
        label=label,
        training=_dataclass(top.sub("training"), TrainingSetSpec),
        design=design,
        params=params,
        reasons=reasons,
        scoring=scoring,
        promotion=_promotion(top.sub("promotion"), features),
        monitoring=_monitoring(top.sub("monitoring")),
        schedules=_dataclass(top.sub("schedules"), Schedules),
        quality=_quality(top.sub("quality"), features, source),
        protected_attributes=tuple(protected),
        explanations=_explanations(top),
        fairness=_fairness(top, source, entity, protected, scoring),
        evaluation=_evaluation(top),
        path=path,
    )
    top.done()
    del start_date  # the default start of real sources is read by orchestration settings
    return use_case


# ----------------------------------------------------------------------------------- source
def _source(top: _Fields, use_case: str) -> SourceSpec:
    raw = top.require("source")
    if isinstance(raw, str):
        builtin = BUILTIN_SOURCES.get(raw)
        if builtin is None:
            raise top.error(
                "source", f"unknown built-in source {raw!r}; known: {sorted(BUILTIN_SOURCES)}"
            )
        return SourceSpec(builtin.tables, simulator=builtin.simulator)
    fields = top.sub("source")
    name = fields.text("name", use_case)
    feeds_raw = fields.sub("feeds")
    if not feeds_raw.raw:
        raise feeds_raw.error(None, "declare at least one feed")
    feeds = {key: _feed(feeds_raw.sub(key), key) for key in list(feeds_raw.raw)}
    feeds_raw.done()
    start = fields.get("start_date")
    if start is not None and not isinstance(start, date):
        raise fields.error("start_date", f"must be a date (YYYY-MM-DD), got {start!r}")
    fields.done()
    with fields.reading("feeds"):
        tables = SourceTables.with_default_flows(name, feeds)
    return SourceSpec(tables, simulator=None, start_date=start)


def _feed(fields: _Fields, name: str) -> LandingSource:
    fmt = fields.text("format", "csv")
    if fmt not in FILE_FORMATS:
        raise fields.error("format", f"must be one of {list(FILE_FORMATS)}, got {fmt!r}")
    assert fmt in ("csv", "jsonl", "parquet")  # narrows the literal type
    columns = {c: _dtype(fields, f"columns.{c}", t) for c, t in fields.sub("columns").raw.items()}
    fields.get("columns")
    if not columns:
        raise fields.error("columns", "declare the feed's columns (name: type)")
    categories_raw = fields.sub("categories")
    categories = {c: tuple(categories_raw.names(c)) for c in list(categories_raw.raw)}
    categories_raw.done()
    bounds = _bounds(fields.sub("bounds"), columns)
    with fields.reading(None):  # the contract's own rules name the column
        feed = LandingSource(
            name=name,
            file_format=fmt,
            columns=columns,
            key=tuple(fields.names("key")) or fields.require("key"),
            timestamp_column=fields.get("timestamp"),
            description=fields.text("description", f"{name} feed."),
            nullable=frozenset(fields.names("nullable")),
            categories=categories,
            bounds=bounds,
            non_finite=frozenset(fields.names("non_finite")),
            future_columns=frozenset(fields.names("future_columns")),
        )
    fields.done()
    return feed


def _bounds(
    fields: _Fields, columns: Mapping[str, pl.DataType]
) -> dict[str, tuple[float | None, float | None]]:
    """Declared ``column: [low, high]`` bounds; other numeric columns of your feeds are open.

    (The built-in contracts default to ``>= 0``; your data may hold refunds or temperatures, so
    nothing is assumed: ``scorehouse init`` writes ``[0, null]`` where the sample is never
    negative.)
    """
    bounds: dict[str, tuple[float | None, float | None]] = {
        c: (None, None) for c, dtype in columns.items() if dtype.is_numeric()
    }
    for column, value in fields.raw.items():
        fields.get(column)
        if column not in bounds:
            raise fields.error(column, "is not a numeric column of the feed")
        if not (
            isinstance(value, list)
            and len(value) == 2
            and all(
                v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in value
            )
        ):
            raise fields.error(column, f"must be [low, high] (null: open), got {value!r}")
        bounds[column] = (value[0], value[1])
    return bounds


def _dtype(fields: _Fields, key: str, value: object) -> pl.DataType:
    if not isinstance(value, str) or value not in TYPES:
        raise fields.error(key, f"type must be one of {list(TYPES)}, got {value!r}")
    return TYPES[value]


def _entity(fields: _Fields) -> Entity:
    entity = Entity(
        name=fields.text("name"),
        join_key=fields.text("join_key"),
        description=fields.text("description", ""),
    )
    fields.done()
    return entity


# --------------------------------------------------------------------------------- features
def _features(fields: _Fields, source: SourceSpec, entity: Entity) -> FeatureSpec:
    kind = fields.text("builder")
    factory = FEATURE_BUILDERS.get(kind)
    if factory is None:
        raise fields.error(
            "builder", f"unknown feature builder {kind!r}; known: {sorted(FEATURE_BUILDERS)}"
        )
    options = fields.sub("options")
    with fields.reading("options"):
        builder = factory(source.tables, entity.join_key, dict(options.raw))
    outputs = dict(builder.outputs())
    ratios = _ratios(fields.sub("ratios"), outputs)
    views = _views(fields, outputs, ratios, builder)
    population = fields.text("population", views[0][0].name)
    if population not in {v.name for v, _ in views}:
        raise fields.error(
            "population", f"{population!r} is not one of the views {[v.name for v, _ in views]}"
        )
    service = _service(fields, views, ratios)
    spec = FeatureSpec(
        builder_name=kind,
        builder=builder,
        views=tuple(v for v, _ in views),
        ratios=tuple(r for r, _ in ratios),
        ttl_days=fields.integer("ttl_days", 3),
        population_view=population,
        service=service[0],
        vocabularies=builder.vocabularies(),
        service_features=tuple(service[1]),
    )
    fields.done()
    return spec


def _ratios(fields: _Fields, outputs: Mapping[str, pl.DataType]) -> list[tuple[Ratio, str]]:
    ratios = []
    for name in list(fields.raw):
        entry = fields.sub(name)
        ratio = Ratio(name, entry.text("numerator"), entry.text("denominator"))
        for key, column in zip(("numerator", "denominator"), ratio.columns, strict=True):
            if column not in outputs:
                raise entry.error(key, f"{column!r} is not a feature the builder computes")
            if not outputs[column].is_numeric():
                raise entry.error(key, f"{column!r} is {outputs[column]}, not numeric")
        if name in outputs:
            raise entry.error(None, f"{name!r} is already a feature the builder computes")
        ratios.append((ratio, entry.text("view")))
        entry.done()
    fields.done()
    return ratios


def _views(
    fields: _Fields,
    outputs: Mapping[str, pl.DataType],
    ratios: list[tuple[Ratio, str]],
    builder: Any,
) -> list[tuple[FeatureView, list[str]]]:
    views_raw = fields.sub("views")
    if not views_raw.raw and hasattr(builder, "default_views"):
        views_raw = _Fields(views_raw.path, views_raw.field, builder.default_views())
    if not views_raw.raw:
        raise views_raw.error(None, "declare at least one view (name: {features: [...]})")
    claimed: dict[str, str] = {}
    views = []
    for view_name in list(views_raw.raw):
        entry = views_raw.sub(view_name)
        names = entry.names("features")
        if not names:
            raise entry.error("features", "a view needs at least one feature")
        for feature in names:
            if feature not in outputs:
                raise entry.error(
                    "features",
                    f"{feature!r} is not a feature the builder computes "
                    f"(it computes {sorted(outputs)})",
                )
            if feature in claimed:
                raise entry.error(
                    "features", f"{feature!r} is already in view {claimed[feature]!r}"
                )
            claimed[feature] = view_name
        columns = {f: outputs[f] for f in names}
        columns |= {r.name: pl.Float64() for r, target in ratios if target == view_name}
        view = FeatureView(view_name, columns, entry.text("description", f"{view_name} features."))
        views.append((view, names))
        entry.done()
    known = {v.name for v, _ in views}
    for ratio, target in ratios:
        if target not in known:
            raise fields.error(
                f"ratios.{ratio.name}.view", f"{target!r} is not one of the views {sorted(known)}"
            )
    return views


def _service(
    fields: _Fields, views: list[tuple[FeatureView, list[str]]], ratios: list[tuple[Ratio, str]]
) -> tuple[str, list[str]]:
    raw = fields.require("service")
    provided = [c for v, _ in views for c in v.columns if c not in {r.name for r, _ in ratios}]
    provided += [r.name for r, _ in ratios]
    if isinstance(raw, str):
        return raw, provided
    entry = fields.sub("service")
    name = entry.text("name")
    listed = entry.names("features", provided)
    missing = [f for f in listed if f not in provided]
    if missing:
        raise entry.error(
            "features", f"no view provides {missing} (rule: a service serves view features)"
        )
    entry.done()
    return name, listed


# ------------------------------------------------------------------------------------ label
def _label(fields: _Fields, source: SourceSpec, entity: Entity, use_case: str) -> LabelSpec:
    kind = fields.text("builder")
    factory = LABEL_BUILDERS.get(kind)
    if factory is None:
        raise fields.error(
            "builder", f"unknown label builder {kind!r}; known: {sorted(LABEL_BUILDERS)}"
        )
    horizon = fields.integer("horizon_days", 30)
    with fields.reading("maturity_days"):
        definition = LabelDefinition(
            table=f"labels.{fields.text('table', use_case)}",
            column=fields.text("column"),
            join_key=entity.join_key,
            horizon_days=horizon,
            maturity_days=fields.integer("maturity_days", horizon),
            event_date_column=fields.text("event_date_column", "event_date"),
        )
    options = fields.sub("options")
    with fields.reading("options"):
        builder = factory(source.tables, definition, dict(options.raw))
    fields.done()
    return LabelSpec(definition, kind, builder)


# ------------------------------------------------------------------------------------ model
def _design(
    fields: _Fields, features: FeatureSpec, label: LabelSpec, entity: Entity
) -> ModelDesign:
    split = fields.text("split", "time")
    if split not in ("time", "holdout"):
        raise fields.error("split", f"must be 'time' or 'holdout', got {split!r}")
    constraints = fields.sub("monotone_constraints")
    service = features.features
    for feature, direction in constraints.raw.items():
        constraints.get(feature)
        if feature not in service:
            raise constraints.error(feature, "is not a feature of the service")
        if direction not in (-1, 1):
            raise constraints.error(feature, f"must be +1 or -1, got {direction!r}")
    with fields.reading("split"):
        encoding = FeatureEncoding(
            feature_service=features.service,
            features=service,
            categories={k: v for k, v in features.vocabularies.items() if k in service},
            label=label.definition.column,
            join_key=entity.join_key,
        )
        return ModelDesign(
            encoding=encoding,
            label_horizon_days=label.definition.horizon_days,
            split=split,  # type: ignore[arg-type]
            monotone_constraints=dict(constraints.raw),
        )


def _reasons(top: _Fields, features: FeatureSpec) -> dict[str, Reason]:
    raw = top.require("reasons")
    if isinstance(raw, str):
        reasons = _reason_file(top, Path(top.path).parent / raw)
    else:
        entries = top.sub("reasons")
        reasons = {}
        for feature in list(entries.raw):
            entry = entries.sub(feature)
            reasons[feature] = Reason(entry.text("code"), entry.text("text"))
            entry.done()
        entries.done()
    missing = [f for f in features.service_features if f not in reasons]
    if missing:
        raise top.error(
            "reasons", f"no reason for features {missing} (rule: every feature has one)"
        )
    codes = [r.code for r in reasons.values()]
    repeated = sorted({c for c in codes if codes.count(c) > 1})
    if repeated:
        raise top.error("reasons", f"codes {repeated} repeat (rule: unique codes)")
    return reasons


def _reason_file(top: _Fields, path: Path) -> dict[str, Reason]:
    try:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError:
        raise top.error(
            "reasons", f"reason catalogue {path.name} not found next to the spec"
        ) from None
    if rows and set(rows[0]) != {"feature", "code", "text"}:
        raise top.error("reasons", f"{path.name} must have columns feature, code, text")
    return {row["feature"]: Reason(row["code"], row["text"]) for row in rows}


def _check_protected(
    top: _Fields, protected: list[str], features: FeatureSpec, reasons: Mapping[str, Reason]
) -> None:
    used = [p for p in protected if p in features.service_features]
    if used:
        raise top.error("protected_attributes", f"{used} are features (rule: never a feature)")
    named = [f for f in reasons if f in protected]
    if named:
        raise top.error("reasons", f"reasons name protected attributes {named}")


def _explanations(top: _Fields) -> ExplanationSpec | None:
    if top.get("explanations") is None:
        return None
    return _dataclass(top.sub("explanations"), ExplanationSpec)


def _fairness(
    top: _Fields,
    source: SourceSpec,
    entity: Entity,
    protected: list[str],
    scoring: ScoringPolicy,
) -> FairnessSpec | None:
    """Where the protected attributes are and what is adverse; every name checked."""
    if top.get("fairness") is None:
        return None
    fields = top.sub("fairness")
    if not protected:
        raise fields.error(None, "needs protected_attributes (rule: fairness is by group)")
    spec = _dataclass(fields, FairnessSpec)
    silver = source.tables.silver
    table = silver.get(f"silver.{spec.table}")
    if table is None:
        known = sorted(name.removeprefix("silver.") for name in silver)
        raise fields.error("table", f"{spec.table!r} is not a silver table of {known}")
    absent = [p for p in protected if p not in table.schema]
    if absent:
        raise fields.error(
            "table", f"{table.name} has no columns {absent} (rule: it holds protected_attributes)"
        )
    if spec.via is None:
        if entity.join_key not in table.schema:
            raise fields.error(
                "via", f"{table.name} has no {entity.join_key!r}: name the silver table linking it"
            )
    else:
        via = silver.get(f"silver.{spec.via}")
        if via is None:
            raise fields.error("via", f"{spec.via!r} is not a silver table of {source.name!r}")
        key = table.primary_key
        needed = [entity.join_key, *key]
        if len(key) != 1 or any(c not in via.schema for c in needed):
            raise fields.error(
                "via", f"{via.name} must hold {needed} (rule: it links the entity to {table.name})"
            )
    unknown = [b for b in spec.adverse_bands if b not in scoring.bands]
    if unknown:
        raise fields.error(
            "adverse_bands", f"{unknown} are not scoring bands {list(scoring.bands)}"
        )
    return spec


def _evaluation(top: _Fields) -> Evaluation | None:
    if top.get("evaluation") is None:
        return None
    fields = top.sub("evaluation")
    evaluation = Evaluation(fields.text("truth"), fields.text("column"))
    fields.done()
    return evaluation


# ------------------------------------------------------------------------------- policies
def _dataclass(fields: _Fields, cls: type[T], **fixed: Any) -> T:
    """An instance of ``cls`` from the fields given (the rest keep their defaults)."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    values = {}
    for key in list(fields.raw):
        if key in names and key not in fixed:
            values[key] = _checked(fields, key, fields.get(key), hints[key])
    fields.done()
    with fields.reading(None):
        return cls(**values, **fixed)


def _checked(fields: _Fields, key: str, value: Any, hint: Any) -> Any:
    """``value`` if it fits the field's type hint (ints widen to floats), else a SpecError."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        for option in (o for o in options if o is not type(None)):
            try:
                return _checked(fields, key, value, option)
            except SpecError:
                continue
        raise fields.error(key, f"must be {hint}, got {value!r}")
    if origin in (Mapping, dict, collections.abc.Mapping):
        if not isinstance(value, Mapping):
            raise fields.error(key, f"must be a mapping, got {value!r}")
        _, value_hint = typing.get_args(hint)
        return {k: _checked(fields, f"{key}.{k}", v, value_hint) for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise fields.error(key, f"must be a list, got {value!r}")
        return tuple(value)
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint in (int, str, bool) and not (
        isinstance(value, hint) and (hint is bool or not isinstance(value, bool))
    ):
        raise fields.error(key, f"must be {hint.__name__}, got {value!r}")
    return value


def _promotion(fields: _Fields, features: FeatureSpec) -> PromotionPolicy:
    business = fields.sub("business")
    value = _dataclass(business, BusinessValue)
    if value.value_feature is not None and value.value_feature not in features.service_features:
        raise business.error(
            "value_feature", f"{value.value_feature!r} is not a feature of the service"
        )
    fields.get("business")
    return _dataclass(fields, PromotionPolicy, business=value)


def _monitoring(fields: _Fields) -> MonitoringSettings:
    nested: dict[str, Callable[[_Fields], Any]] = {
        "drift": lambda f: _dataclass(f, DriftThresholds),
        "diagnosis": lambda f: _dataclass(f, DiagnosisThresholds),
        "policy": lambda f: _dataclass(f, RetrainPolicy),
    }
    parts = {key: build(fields.sub(key)) for key, build in nested.items()}
    for key in parts:
        fields.get(key)
    return _dataclass(fields, MonitoringSettings, **parts)


def _quality(fields: _Fields, features: FeatureSpec, source: SourceSpec) -> QualitySpec:
    rates = {}
    for key in ("label_rate_error", "label_rate_warn"):
        value = fields.get(key)
        if value is not None:
            if not (isinstance(value, list) and len(value) == 2):
                raise fields.error(key, f"must be [low, high], got {value!r}")
            rates[key] = (float(value[0]), float(value[1]))
    nullable = fields.names("nullable")
    unknown = [f for f in nullable if f not in features.service_features]
    if unknown:
        raise fields.error("nullable", f"{unknown} are not features of the service")
    ranges_raw = fields.sub("ranges")
    ranges = {}
    for feature, bounds in ranges_raw.raw.items():
        ranges_raw.get(feature)
        if feature not in features.service_features:
            raise ranges_raw.error(feature, "is not a feature of the service")
        if not (isinstance(bounds, list) and len(bounds) == 2):
            raise ranges_raw.error(feature, f"must be [low, high] (null: open), got {bounds!r}")
        ranges[feature] = (bounds[0], bounds[1])
    ranges_raw.done()
    tenure = fields.get("tenure")
    if tenure is not None:
        entry = fields.sub("tenure")
        table = entry.text("table")
        if table not in source.tables.silver:
            raise entry.error("table", f"{table!r} is not a silver table of source {source.name!r}")
        feature = entry.text("feature")
        if feature not in features.service_features:
            raise entry.error("feature", f"{feature!r} is not a feature of the service")
        column = entry.text("column")
        if column not in source.tables.silver[table].schema:
            raise entry.error("column", f"{table} has no column {column!r}")
        tenure = {"table": table, "feature": feature, "column": column}
        entry.done()
    non_negative = fields.get("non_negative", False)
    if not isinstance(non_negative, bool):
        raise fields.error("non_negative", f"must be true or false, got {non_negative!r}")
    fields.done()
    return QualitySpec(
        nullable=tuple(nullable),
        ranges=ranges,
        tenure=tenure,
        non_negative=non_negative,
        **rates,
    )
