"""``DeltaOfflineStore``: a Feast offline store over Delta tables, computed with polars.

Enable it in ``feature_store.yaml``::

    offline_store:
      type: lakehouse.feast_delta.DeltaOfflineStore
      # lakehouse_uri: ../.scorehouse/lakehouse   # optional root for relative paths

Feast imports ``DeltaOfflineStoreConfig`` from the module named in ``type`` and then the
store class from the config class's own module (``lakehouse.feast_delta.store``), so
both names must exist in both places.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import polars as pl
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from feast.data_source import DataSource
from feast.feature_view import DUMMY_ENTITY_ID, DUMMY_ENTITY_VAL, FeatureView
from feast.infra.offline_stores.offline_store import OfflineStore
from feast.infra.registry.base_registry import BaseRegistry
from feast.on_demand_feature_view import OnDemandFeatureView
from feast.repo_config import FeastConfigBaseModel, RepoConfig
from feast.utils import _get_requested_feature_views_to_features_dict
from pydantic import PositiveInt, StrictStr

from lakehouse.feast_delta.errors import (
    DeltaSchemaError,
    DeltaSnapshotUnavailableError,
    EntityFrameError,
)
from lakehouse.feast_delta.job import DeltaRetrievalJob, DeltaRetrievalMetadata, standardize_arrow
from lakehouse.feast_delta.pit_join import (
    DEFAULT_MAX_ROWS_PER_PASS,
    FeatureFrame,
    check_entity_frame,
    entity_frame_to_arrow,
    point_in_time_join,
    timestamp_literal,
)
from lakehouse.feast_delta.source import DeltaSource, is_uri

_TS = "__scorehouse_feature_ts"
_CREATED = "__scorehouse_feature_created"


class DeltaOfflineStoreConfig(FeastConfigBaseModel):
    """``offline_store`` section of ``feature_store.yaml`` for :class:`DeltaOfflineStore`."""

    type: Literal[
        "lakehouse.feast_delta.DeltaOfflineStore",
        "lakehouse.feast_delta.store.DeltaOfflineStore",
    ] = "lakehouse.feast_delta.DeltaOfflineStore"
    """Offline store type selector."""

    lakehouse_uri: StrictStr | None = None
    """Root for relative ``DeltaSource`` paths (relative to the repo); the environment
    variable ``SCOREHOUSE_LAKEHOUSE_URI`` takes precedence."""

    version_pins: dict[StrictStr, int] | None = None
    """Source ``path`` → Delta version to read instead of the latest (sources without their
    own ``version``): a whole retrieval at recorded versions, e.g. to replay a scoring run."""

    max_rows_per_pass: PositiveInt = DEFAULT_MAX_ROWS_PER_PASS
    """Tables with more rows (per Delta statistics) are joined in several passes over hash
    partitions of the join keys: less memory, more scanning."""


@dataclass(frozen=True)
class _OpenedSource:
    """A source opened at a fixed version, with what is needed to read it."""

    source: DeltaSource
    table: DeltaTable
    uri: str
    columns: tuple[str, ...]

    @property
    def version(self) -> int:
        return self.table.version()

    def scan(self) -> pl.LazyFrame:
        """Lazy scan of exactly the files in this snapshot (never a directory listing)."""
        return pl.scan_delta(self.table)


def _open(config: RepoConfig, data_source: DataSource | None, view: str | None) -> _OpenedSource:
    """Open a view's source at its pinned or latest version; fail early if files are gone."""
    if not isinstance(data_source, DeltaSource):
        owner = f"feature view '{view}'" if view else "the request"
        raise TypeError(
            f"The Delta offline store reads only DeltaSource; {owner} uses "
            f"{type(data_source).__name__}"
        )
    table = data_source.open(config, view=view)
    uri = data_source.table_uri(config)
    if not is_uri(uri) or uri.startswith("file://"):
        # Local tables: a data file missing here means VACUUM (or a hand deletion) removed
        # it; saying so beats a bare "No such file" halfway through the query.
        missing = next((p for p in table.file_uris() if not os.path.exists(p)), None)
        if missing is not None:
            raise DeltaSnapshotUnavailableError(
                f"DeltaSource '{data_source.name}'"
                + (f" of feature view '{view}'" if view else "")
                + f": version {table.version()} of {uri} references data files that no "
                f"longer exist (first: {missing}); was the table vacuumed?"
            )
    columns = tuple(pa.schema(table.schema().to_arrow()).names)
    return _OpenedSource(data_source, table, uri, columns)


def _require(opened: _OpenedSource, raw: dict[str, str], view: str | None) -> None:
    """Raise DeltaSchemaError naming every needed column that the table lacks.

    ``raw`` maps the column name the table must have to the name Feast knows it by.
    """
    missing = {col: name for col, name in raw.items() if col not in opened.columns}
    if missing:
        described = ", ".join(
            f"'{col}'" + (f" (mapped to '{name}')" if name != col else "")
            for col, name in missing.items()
        )
        owner = f"Feature view '{view}'" if view else f"DeltaSource '{opened.source.name}'"
        raise DeltaSchemaError(
            f"{owner}: Delta table {opened.uri} (version {opened.version}) has no column "
            f"{described}; columns: {list(opened.columns)}"
        )


def _run(compute: Callable[[], pa.Table], opened: Sequence[_OpenedSource]) -> pa.Table:
    """Run a read, turning a file vanishing mid-query into a clear snapshot error."""
    try:
        return compute()
    except (FileNotFoundError, pl.exceptions.ComputeError) as e:
        if isinstance(e, pl.exceptions.ComputeError) and "not found" not in str(e).lower():
            raise
        tables = ", ".join(f"{o.uri}@v{o.version}" for o in opened)
        raise DeltaSnapshotUnavailableError(
            f"Data files of Delta snapshot(s) {tables} could not be read ({e}); "
            "was a table vacuumed?"
        ) from e


def _feature_frame(
    config: RepoConfig, fv: FeatureView, features: list[str], full_feature_names: bool
) -> tuple[FeatureFrame, _OpenedSource]:
    """Describe one feature view as a lazy, renamed Delta scan."""
    known = {f.name for f in fv.features}
    unknown = [f for f in features if f not in known]
    if unknown:
        raise DeltaSchemaError(
            f"Feature view '{fv.name}' has no feature(s) {unknown}; features: {sorted(known)}"
        )
    opened = _open(config, fv.batch_source, fv.name)
    source = opened.source
    reverse = {mapped: col for col, mapped in source.field_mapping.items()}

    def raw(name: str) -> str:
        return reverse.get(name, name)

    select: dict[str, str] = {}  # output name -> table column
    keys = []
    for entity_column in fv.entity_columns:
        key = fv.projection.join_key_map.get(entity_column.name, entity_column.name)
        keys.append(key)
        select[key] = raw(entity_column.name)
    select[_TS] = raw(source.timestamp_field)
    if source.created_timestamp_column:
        select[_CREATED] = raw(source.created_timestamp_column)
    prefix = f"{fv.projection.name_to_use()}__" if full_feature_names else ""
    outputs = [prefix + f for f in features]
    select.update({prefix + f: raw(f) for f in features})
    stamps = [source.timestamp_field, source.created_timestamp_column]
    feast_names = [*(e.name for e in fv.entity_columns), *filter(None, stamps), *features]
    _require(opened, {raw(name): name for name in feast_names}, fv.name)

    frame = opened.scan().select(pl.col(col).alias(name) for name, col in select.items())
    return (
        FeatureFrame(
            name=fv.name,
            frame=frame,
            join_keys=keys,
            timestamp_column=_TS,
            feature_columns=outputs,
            created_timestamp_column=_CREATED if source.created_timestamp_column else None,
            ttl=fv.ttl,
            row_count_hint=opened.table.count(),
        ),
        opened,
    )


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


class DeltaOfflineStore(OfflineStore):
    """Feast offline store that reads :class:`DeltaSource` tables with polars.

    See ``docs/feast_offline_store.md`` for the retrieval semantics.
    """

    @staticmethod
    def get_historical_features(
        config: RepoConfig,
        feature_views: list[FeatureView],
        feature_refs: list[str],
        entity_df: Any,
        registry: BaseRegistry,
        project: str,
        full_feature_names: bool = False,
        **kwargs: Any,
    ) -> DeltaRetrievalJob:
        """Point-in-time join of ``entity_df`` with the referenced features.

        ``entity_df`` may be a pandas, polars (eager or lazy) or pyarrow frame. Every
        entity row is returned once, in input order, with features appended per view in
        the order the references name them. Table versions are resolved now and exposed as
        ``job.source_versions`` / ``job.metadata.source_versions``.

        Raises:
            NotImplementedError: ``entity_df`` is an SQL string or ``None``.
            EntityFrameError, DeltaSchemaError, DeltaTableNotFoundError,
            DeltaSnapshotUnavailableError, TypeError: see their messages.
        """
        if entity_df is None:
            raise NotImplementedError(
                "Retrieval without an entity frame (start_date/end_date) is not supported by "
                "the Delta offline store; pass an entity frame"
            )
        entity_table, ts_col = entity_frame_to_arrow(entity_df)
        odfvs = OnDemandFeatureView.get_requested_odfvs(feature_refs, project, registry)
        views_to_features, _ = _get_requested_feature_views_to_features_dict(
            feature_refs, feature_views, odfvs
        )
        frames, opened = [], []
        for fv, features in views_to_features.items():
            frame, source = _feature_frame(config, fv, features, full_feature_names)
            frames.append(frame)
            opened.append(source)

        names = set(entity_table.column_names)
        needed = [k for f in frames for k in f.join_keys if k in names]
        entity = pl.from_arrow(entity_table.select([*dict.fromkeys(needed), ts_col]))
        assert isinstance(entity, pl.DataFrame)
        check_entity_frame(entity, frames, ts_col)  # fail now, not at to_df()
        for frame in frames:
            clash = names.intersection(frame.feature_columns)
            if clash:
                raise EntityFrameError(
                    f"Entity frame columns {sorted(clash)} collide with features of feature "
                    f"view '{frame.name}'; use full_feature_names=True or rename them"
                )

        max_rows = getattr(config.offline_store, "max_rows_per_pass", DEFAULT_MAX_ROWS_PER_PASS)

        def compute() -> pa.Table:
            joined = point_in_time_join(
                entity, frames, timestamp_column=ts_col, max_rows_per_pass=max_rows
            )
            result = entity_table
            for frame in frames:
                for name in frame.feature_columns:
                    result = result.append_column(name, joined.get_column(name).to_arrow())
            return standardize_arrow(result)

        versions = {o.uri: o.version for o in opened}
        ts = entity.get_column(ts_col)
        return DeltaRetrievalJob(
            lambda: _run(compute, opened),
            source_versions=versions,
            full_feature_names=full_feature_names,
            on_demand_feature_views=odfvs,
            metadata=DeltaRetrievalMetadata(
                features=list(feature_refs),
                keys=[c for c in entity_table.column_names if c != ts_col],
                source_versions=versions,
                min_event_timestamp=ts.min(),  # type: ignore[arg-type]
                max_event_timestamp=ts.max(),  # type: ignore[arg-type]
            ),
        )

    @staticmethod
    def pull_latest_from_table_or_query(
        config: RepoConfig,
        data_source: DataSource,
        join_key_columns: list[str],
        feature_name_columns: list[str],
        timestamp_field: str,
        created_timestamp_column: str | None,
        start_date: datetime,
        end_date: datetime,
    ) -> DeltaRetrievalJob:
        """Latest row per join key with ``start_date <= timestamp <= end_date``.

        Ties on the timestamp go to the latest created timestamp. Columns keep their table
        names (Feast applies ``field_mapping`` afterwards); an entity-less view gets Feast's
        dummy entity column. Used by ``feast materialize`` when
        ``materialization_config.pull_latest_features`` is set.
        """
        return _pull(
            config,
            data_source,
            join_key_columns,
            feature_name_columns,
            timestamp_field,
            created_timestamp_column,
            start_date,
            end_date,
            latest=True,
        )

    @staticmethod
    def pull_all_from_table_or_query(
        config: RepoConfig,
        data_source: DataSource,
        join_key_columns: list[str],
        feature_name_columns: list[str],
        timestamp_field: str,
        created_timestamp_column: str | None = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
    ) -> DeltaRetrievalJob:
        """All rows with ``start_date <= timestamp <= end_date`` (either bound optional).

        Columns keep their table names; an empty ``feature_name_columns`` returns every
        column (Feast asks for that for views with transformations). This is what
        ``feast materialize`` uses by default; Feast de-duplicates afterwards.
        """
        return _pull(
            config,
            data_source,
            join_key_columns,
            feature_name_columns,
            timestamp_field,
            created_timestamp_column,
            start_date,
            end_date,
            latest=False,
        )

    @staticmethod
    def offline_write_batch(
        config: RepoConfig,
        feature_view: FeatureView,
        table: pa.Table,
        progress: Callable[[int], Any] | None,
    ) -> None:
        """Append ``table`` to the view's Delta table (columns must match the table's).

        Raises:
            ValueError: the source is pinned to a version, or the columns differ.
        """
        opened = _open(config, feature_view.batch_source, feature_view.name)
        if opened.source.pinned_version(config) is not None:
            raise ValueError(
                f"Feature view '{feature_view.name}': its DeltaSource is pinned to version "
                f"{opened.source.pinned_version(config)}; refusing to write"
            )
        schema = pa.schema(opened.table.schema().to_arrow())
        if set(table.column_names) != set(schema.names):
            raise ValueError(
                f"Feature view '{feature_view.name}': columns {sorted(table.column_names)} "
                f"do not match the Delta table's {sorted(schema.names)}"
            )
        write_deltalake(
            opened.uri,
            table.select(schema.names).cast(schema),
            mode="append",
            storage_options=opened.source.storage_options or None,
        )
        if progress:
            progress(table.num_rows)


def _pull(
    config: RepoConfig,
    data_source: DataSource,
    join_key_columns: list[str],
    feature_name_columns: list[str],
    timestamp_field: str,
    created_timestamp_column: str | None,
    start_date: datetime | None,
    end_date: datetime | None,
    *,
    latest: bool,
) -> DeltaRetrievalJob:
    opened = _open(config, data_source, None)
    stamps = [timestamp_field, *([created_timestamp_column] if created_timestamp_column else [])]
    wanted = [*join_key_columns, *feature_name_columns, *stamps]
    _require(opened, {c: c for c in wanted}, None)
    columns = list(dict.fromkeys(wanted)) if feature_name_columns else list(opened.columns)
    start, end = _utc(start_date), _utc(end_date)

    def compute() -> pa.Table:
        frame = opened.scan().select(columns)
        dtype = frame.collect_schema()[timestamp_field]
        ts = pl.col(timestamp_field)
        if start is not None:
            frame = frame.filter(ts >= timestamp_literal(start, dtype))
        if end is not None:
            frame = frame.filter(ts <= timestamp_literal(end, dtype))
        if latest:
            frame = frame.sort(stamps, nulls_last=False)
            frame = (
                frame.unique(subset=join_key_columns, keep="last")
                if join_key_columns
                else frame.tail(1)
            )
        if not join_key_columns:
            frame = frame.with_columns(pl.lit(DUMMY_ENTITY_VAL).alias(DUMMY_ENTITY_ID))
        return standardize_arrow(frame.collect().to_arrow())

    return DeltaRetrievalJob(
        lambda: _run(compute, [opened]),
        source_versions={opened.uri: opened.version},
    )
