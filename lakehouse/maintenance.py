"""Table maintenance that never breaks time travel to versions an audit may need.

``optimize`` compacts small files; it commits with ``dataChange=false`` and keeps the old files,
so every earlier version stays readable. ``vacuum`` deletes files no longer referenced by recent
versions. It refuses a retention shorter than the table's catalog retention, and never deletes a
file that a protected version (e.g. one recorded by an audited prediction) still reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from deltalake.transaction import CommitProperties

from lakehouse.commit import CommitInfo
from lakehouse.errors import RetentionError
from lakehouse.storage import Lakehouse


@dataclass(frozen=True)
class VacuumResult:
    table: str
    files: list[str]
    dry_run: bool


def optimize(lake: Lakehouse, name: str, *, commit: CommitInfo | None = None) -> dict[str, Any]:
    """Compact the table's small files into larger ones (Delta OPTIMIZE); returns its metrics."""
    dt = lake.delta_table(name)
    properties = CommitProperties(
        custom_metadata=(commit or CommitInfo()).to_metadata("optimize", 0)
    )
    return dt.optimize.compact(commit_properties=properties)


def vacuum(
    lake: Lakehouse,
    name: str,
    *,
    retention_hours: int | None = None,
    protected_versions: Iterable[int] = (),
    dry_run: bool = True,
) -> VacuumResult:
    """Delete data files removed from the table more than ``retention_hours`` ago.

    ``retention_hours`` defaults to the table's catalog retention; a shorter value raises
    ``RetentionError``. Files read by any of ``protected_versions`` are kept whatever their age.
    With ``dry_run`` (the default) nothing is deleted and the files that would be are returned.
    """
    spec = lake.catalog[name]
    minimum = spec.retention_days * 24
    hours = minimum if retention_hours is None else retention_hours
    if hours < minimum:
        raise RetentionError(
            f"{name}: vacuum with {hours} h retention refused; the table keeps removed files "
            f"for {minimum} h ({spec.retention_days} days) so audited versions stay readable"
        )
    dt = lake.delta_table(name)
    latest = dt.version()
    keep = sorted({v for v in protected_versions if v <= latest})
    files = dt.vacuum(
        retention_hours=hours,
        dry_run=dry_run,
        enforce_retention_duration=True,
        keep_versions=keep or None,
        commit_properties=CommitProperties(custom_metadata=CommitInfo().to_metadata("vacuum", 0)),
    )
    return VacuumResult(name, files, dry_run)
