"""``DeltaSource``: a Feast data source backed by a Delta Lake table.

Paths may be absolute, URIs (``s3://…``, ``file://…``) or relative. A relative path is
resolved against the first of:

1. the environment variable ``SCOREHOUSE_LAKEHOUSE_URI`` (the lakehouse root, a URI or a
   directory; a relative directory is taken relative to the current working directory);
2. ``offline_store.lakehouse_uri`` in ``feature_store.yaml`` (relative to the repo);
3. the Feast repo directory (``RepoConfig.repo_path``);
4. the current working directory.

Tables live at ``{root}/{layer}/{name}``, so a source normally says
``path="features/activity"``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import urlparse

import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError, TableNotFoundError
from feast import type_map
from feast.data_source import DataSource
from feast.protos.feast.core.DataSource_pb2 import DataSource as DataSourceProto
from feast.repo_config import RepoConfig
from feast.value_type import ValueType

from lakehouse.feast_delta.errors import DeltaSnapshotUnavailableError, DeltaTableNotFoundError

LAKEHOUSE_URI_ENV = "SCOREHOUSE_LAKEHOUSE_URI"
_CLASS_PATH = "lakehouse.feast_delta.source.DeltaSource"


def is_uri(path: str) -> bool:
    """True for ``scheme://…`` locations (one-letter schemes are Windows drives)."""
    return len(urlparse(path).scheme) > 1


def _join(root: str, path: str) -> str:
    if is_uri(root):
        return f"{root.rstrip('/')}/{path.lstrip('/')}"
    return str(Path(root) / path)


def lakehouse_root(config: RepoConfig | None) -> str:
    """The directory or URI that relative source paths are resolved against."""
    env = os.environ.get(LAKEHOUSE_URI_ENV)
    if env:
        return env if is_uri(env) else os.path.abspath(env)
    repo_path = getattr(config, "repo_path", None) if config is not None else None
    configured = getattr(getattr(config, "offline_store", None), "lakehouse_uri", None)
    if configured:
        if is_uri(configured) or os.path.isabs(configured):
            return configured
        return os.path.abspath(_join(str(repo_path or os.getcwd()), configured))
    return os.path.abspath(str(repo_path)) if repo_path else os.getcwd()


def resolve_table_uri(path: str, config: RepoConfig | None) -> str:
    """Absolute path or URI of a table given as ``path`` (see module docstring)."""
    if is_uri(path) or os.path.isabs(path):
        return path
    return _join(lakehouse_root(config), path)


def arrow_type_string(dtype: pa.DataType) -> str:
    """Arrow type as the string Feast's ``pa_to_feast_value_type`` understands.

    Large/view string types are reported as ``string`` (Feast would read ``large_string``
    as JSON) and lists as ``list<item: …>`` whatever their child field is called.
    """
    if pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype):
        return "string"
    if pa.types.is_large_binary(dtype) or pa.types.is_binary_view(dtype):
        return "binary"
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype) or pa.types.is_list_view(dtype):
        return f"list<item: {arrow_type_string(dtype.value_type)}>"
    return str(dtype)


class DeltaSource(DataSource):
    """A batch source reading one Delta table, optionally pinned to a table version.

    Only the files of the table's snapshot (per its ``_delta_log``) are ever read, never a
    directory listing, so rows removed by overwrites, deletes or merges do not come back.
    """

    def __init__(
        self,
        name: str,
        path: str,
        timestamp_field: str = "",
        created_timestamp_column: str | None = None,
        field_mapping: dict[str, str] | None = None,
        version: int | None = None,
        storage_options: dict[str, str] | None = None,
        description: str | None = "",
        tags: dict[str, str] | None = None,
        owner: str | None = "",
    ) -> None:
        """Create a source.

        Args:
            name: Unique name of the source within the Feast project.
            path: Table location: absolute, URI, or relative to the lakehouse root
                (e.g. ``features/activity``); see the module docstring.
            timestamp_field: Event-timestamp column used for point-in-time joins.
            created_timestamp_column: Optional column that breaks ties between rows with
                the same event timestamp (latest wins).
            field_mapping: Source column -> feature/column name.
            version: Pin reads to this Delta table version; ``None`` reads the latest.
            storage_options: Passed to ``deltalake`` (object-store settings). They are
                stored in the Feast registry, so keep secrets in environment variables.
            description: Human-readable description.
            tags: Free-form metadata.
            owner: Owner, usually an e-mail address.
        """
        if not path:
            raise ValueError(f"DeltaSource '{name}' needs a table path")
        if version is not None and version < 0:
            raise ValueError(f"DeltaSource '{name}': version must be >= 0, got {version}")
        self.path = path
        self.version = version
        self.storage_options = dict(storage_options or {})
        super().__init__(
            name=name,
            timestamp_field=timestamp_field,
            created_timestamp_column=created_timestamp_column,
            field_mapping=field_mapping,
            description=description,
            tags=tags,
            owner=owner,
        )

    def __hash__(self) -> int:
        return super().__hash__()

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, DeltaSource)
            and super().__eq__(other)
            and (self.path, self.version, self.storage_options)
            == (other.path, other.version, other.storage_options)
        )

    def source_type(self) -> DataSourceProto.SourceType.ValueType:
        return DataSourceProto.CUSTOM_SOURCE

    @staticmethod
    def from_proto(data_source: DataSourceProto) -> DeltaSource:
        options = json.loads(data_source.custom_options.configuration or b"{}")
        return DeltaSource(
            name=data_source.name,
            path=options["path"],
            timestamp_field=data_source.timestamp_field,
            created_timestamp_column=data_source.created_timestamp_column or None,
            field_mapping=dict(data_source.field_mapping),
            version=options.get("version"),
            storage_options=options.get("storage_options"),
            description=data_source.description,
            tags=dict(data_source.tags),
            owner=data_source.owner,
        )

    def _to_proto_impl(self) -> DataSourceProto:
        options = {
            "path": self.path,
            "version": self.version,
            "storage_options": self.storage_options,
        }
        proto = DataSourceProto(
            name=self.name,
            type=DataSourceProto.CUSTOM_SOURCE,
            data_source_class_type=_CLASS_PATH,
            field_mapping=self.field_mapping,
            custom_options=DataSourceProto.CustomSourceOptions(
                configuration=json.dumps(options, sort_keys=True).encode()
            ),
            description=self.description,
            tags=self.tags,
            owner=self.owner,
        )
        proto.timestamp_field = self.timestamp_field
        proto.created_timestamp_column = self.created_timestamp_column
        return proto

    @staticmethod
    def source_datatype_to_feast_value_type() -> Callable[[str], ValueType]:
        return type_map.pa_to_feast_value_type

    def table_uri(self, config: RepoConfig | None) -> str:
        """Absolute path or URI of the table for this repo configuration."""
        return resolve_table_uri(self.path, config)

    def open(self, config: RepoConfig | None, *, view: str | None = None) -> DeltaTable:
        """Open the table at the pinned (or latest) version.

        Raises:
            DeltaTableNotFoundError: no Delta table at the resolved location.
            DeltaSnapshotUnavailableError: the pinned version cannot be loaded.
        """
        uri = self.table_uri(config)
        what = f"DeltaSource '{self.name}'" + (f" of feature view '{view}'" if view else "")
        version = self.pinned_version(config)
        try:
            return DeltaTable(uri, version=version, storage_options=self.storage_options)
        except TableNotFoundError as e:
            raise DeltaTableNotFoundError(f"{what}: no Delta table at {uri}") from e
        except DeltaError as e:
            if version is None:
                raise
            raise DeltaSnapshotUnavailableError(
                f"{what}: version {version} of {uri} cannot be loaded ({e})"
            ) from e

    def pinned_version(self, config: RepoConfig | None) -> int | None:
        """The source's own ``version``, else a ``version_pins`` entry of the offline store
        config (keyed by the source ``path``), else None (latest)."""
        if self.version is not None:
            return self.version
        pins = getattr(getattr(config, "offline_store", None), "version_pins", None) or {}
        return pins.get(self.path)

    def arrow_schema(self, config: RepoConfig | None) -> pa.Schema:
        """Arrow schema of the table snapshot."""
        return pa.schema(self.open(config).schema().to_arrow())

    def get_table_column_names_and_types(self, config: RepoConfig) -> Iterable[tuple[str, str]]:
        """Column names and Arrow type strings from the Delta schema (used by inference)."""
        return [(f.name, arrow_type_string(f.type)) for f in self.arrow_schema(config)]

    def get_table_query_string(self) -> str:
        """A DuckDB-style reference to the table (``delta_scan('<path>')``), for display."""
        return f"delta_scan('{self.path}')"

    def validate(self, config: RepoConfig) -> None:
        """Check the table exists and has the timestamp columns (run by ``feast apply``).

        Raises:
            DeltaTableNotFoundError / DeltaSnapshotUnavailableError: table unreadable.
            ValueError: the event or created timestamp column is missing.
        """
        names = set(self.arrow_schema(config).names)
        reverse = {v: k for k, v in self.field_mapping.items()}
        for column in (self.timestamp_field, self.created_timestamp_column):
            raw = reverse.get(column, column)
            if column and raw not in names:
                raise ValueError(
                    f"DeltaSource '{self.name}': column '{raw}' is not in the table at "
                    f"{self.table_uri(config)} (columns: {sorted(names)})"
                )

    def __repr__(self) -> str:
        pinned = f", version={self.version}" if self.version is not None else ""
        return f"DeltaSource(name={self.name!r}, path={self.path!r}{pinned})"
