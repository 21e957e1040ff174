"""``DeltaRetrievalJob``: the lazy result of a Delta offline-store query."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

import pandas as pd
import polars as pl
import pyarrow as pa
from feast.infra.offline_stores.offline_store import RetrievalJob, RetrievalMetadata
from feast.on_demand_feature_view import OnDemandFeatureView
from feast.saved_dataset import SavedDatasetStorage

if TYPE_CHECKING:
    from feast.saved_dataset import ValidationReference

_PANDAS_NULLABLE: dict[pa.DataType, object] = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.uint8(): pd.UInt8Dtype(),
    pa.uint16(): pd.UInt16Dtype(),
    pa.uint32(): pd.UInt32Dtype(),
    pa.uint64(): pd.UInt64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


def arrow_to_pandas(table: pa.Table) -> pd.DataFrame:
    """Arrow -> pandas keeping integer and boolean columns integral when they hold nulls.

    Integers and booleans become pandas nullable dtypes (``Int64``, ``boolean``…);
    everything else converts as ``pyarrow.Table.to_pandas`` does.
    """
    return table.to_pandas(types_mapper=_PANDAS_NULLABLE.get).reset_index(drop=True)


def _standard_type(dtype: pa.DataType) -> pa.DataType:
    """Polars emits large/view Arrow types; map them back to the plain ones Feast expects."""
    if pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype):
        return pa.string()
    if pa.types.is_large_binary(dtype) or pa.types.is_binary_view(dtype):
        return pa.binary()
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype) or pa.types.is_list_view(dtype):
        return pa.list_(_standard_type(dtype.value_type))
    return dtype


def standardize_arrow(table: pa.Table) -> pa.Table:
    """Cast large/view string, binary and list columns to their plain Arrow types."""
    schema = pa.schema(
        [f.with_type(_standard_type(f.type)) for f in table.schema], metadata=table.schema.metadata
    )
    return table if schema.equals(table.schema) else table.cast(schema)


class DeltaRetrievalMetadata(RetrievalMetadata):
    """Feast's retrieval metadata plus the Delta table versions the job reads.

    Attributes:
        source_versions: Resolved table URI -> Delta version read.
    """

    def __init__(
        self,
        features: list[str],
        keys: list[str],
        source_versions: Mapping[str, int],
        min_event_timestamp: datetime | None = None,
        max_event_timestamp: datetime | None = None,
    ) -> None:
        super().__init__(features, keys, min_event_timestamp, max_event_timestamp)
        self.source_versions = dict(source_versions)


class DeltaRetrievalJob(RetrievalJob):
    """Runs a prepared Delta read when a result is requested.

    Table versions are fixed when the job is created, so every ``to_*`` call on one job
    reads the same snapshots even if the tables change in between.
    """

    def __init__(
        self,
        compute: Callable[[], pa.Table],
        *,
        source_versions: Mapping[str, int],
        full_feature_names: bool = False,
        on_demand_feature_views: list[OnDemandFeatureView] | None = None,
        metadata: DeltaRetrievalMetadata | None = None,
    ) -> None:
        self._compute = compute
        self._source_versions = dict(source_versions)
        self._full_feature_names = full_feature_names
        self._on_demand_feature_views = list(on_demand_feature_views or [])
        self._metadata = metadata

    @property
    def full_feature_names(self) -> bool:
        return self._full_feature_names

    @property
    def on_demand_feature_views(self) -> list[OnDemandFeatureView]:
        return self._on_demand_feature_views

    @property
    def metadata(self) -> DeltaRetrievalMetadata | None:
        return self._metadata

    @property
    def source_versions(self) -> dict[str, int]:
        """Resolved table URI -> Delta version this job reads."""
        return dict(self._source_versions)

    def _to_arrow_internal(self, timeout: int | None = None) -> pa.Table:
        return self._compute()

    def _to_df_internal(self, timeout: int | None = None) -> pd.DataFrame:
        return arrow_to_pandas(self._to_arrow_internal(timeout=timeout))

    def to_df(
        self,
        validation_reference: ValidationReference | None = None,
        timeout: int | None = None,
    ) -> pd.DataFrame:
        """Result as pandas (with on-demand features); integer/bool columns are nullable."""
        return arrow_to_pandas(
            self.to_arrow(validation_reference=validation_reference, timeout=timeout)
        )

    def to_polars(self, timeout: int | None = None) -> pl.DataFrame:
        """Result as a polars DataFrame (with on-demand features)."""
        frame = pl.from_arrow(self.to_arrow(timeout=timeout))
        assert isinstance(frame, pl.DataFrame)
        return frame

    def persist(
        self,
        storage: SavedDatasetStorage,
        allow_overwrite: bool = False,
        timeout: int | None = None,
    ) -> None:
        raise NotImplementedError(
            "Saved datasets are not supported by the Delta offline store; write "
            "job.to_arrow() to a Delta table with deltalake.write_deltalake instead"
        )
