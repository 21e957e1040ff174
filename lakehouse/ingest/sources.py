"""The built-in source systems a use-case spec can name (``source: saas``)."""

from __future__ import annotations

from dataclasses import dataclass

from lakehouse.ingest.lending import LENDING
from lakehouse.ingest.saas import SAAS
from lakehouse.ingest.tables import SourceTables


@dataclass(frozen=True)
class BuiltinSource:
    """A source system shipped with Scorehouse, and the simulator that can generate it."""

    tables: SourceTables
    simulator: str | None


BUILTIN_SOURCES: dict[str, BuiltinSource] = {
    "saas": BuiltinSource(SAAS, simulator="saas"),
    "lending": BuiltinSource(LENDING, simulator="lending"),
}
