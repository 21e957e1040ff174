import dataclasses
from datetime import date
from pathlib import Path

import pytest

from lakehouse.catalog import Catalog
from lakehouse.errors import RetentionError, VersionNotAvailableError
from lakehouse.maintenance import optimize, vacuum
from lakehouse.storage import Lakehouse

from .conftest import EVENTS, LOG, events

D1 = date(2025, 1, 1)


def test_vacuum_refuses_retention_shorter_than_the_catalog(lake: Lakehouse) -> None:
    lake.append("test.events", events([1], D1))
    with pytest.raises(RetentionError, match=r"test.events: vacuum with 0 h retention refused"):
        vacuum(lake, "test.events", retention_hours=0, dry_run=False)


def test_optimize_keeps_every_version_readable(lake: Lakehouse) -> None:
    for i in range(4):
        lake.append("test.events", events([i], D1))
    before = {v: lake.read("test.events", version=v).sort("event_id") for v in range(4)}
    metrics = optimize(lake, "test.events")
    assert metrics["numFilesRemoved"] == 4
    assert len(lake.delta_table("test.events").file_uris()) == 1
    for version, frame in before.items():
        assert lake.read("test.events", version=version).sort("event_id").equals(frame)
    assert lake.history("test.events")[0]["scorehouse.operation"] == "optimize"


def test_vacuum_keeps_protected_versions(tmp_path: Path) -> None:
    short = dataclasses.replace(EVENTS, retention_days=0)
    lake = Lakehouse(tmp_path / "lake", catalog=Catalog([short, LOG]))
    lake.append("test.events", events([1], D1))
    lake.replace("test.events", events([2], D1), partition={"day": D1})
    lake.replace("test.events", events([3], D1), partition={"day": D1})

    kept = vacuum(lake, "test.events", protected_versions=[1], dry_run=False)
    assert len(kept.files) == 1  # version 0's file; version 1 is protected
    assert lake.read("test.events", version=1)["event_id"].to_list() == [2]
    with pytest.raises(VersionNotAvailableError, match="vacuumed"):
        lake.read("test.events", version=0)
