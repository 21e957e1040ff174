"""The simulator never overwrites a landing folder it did not write, nor a different world."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from lakehouse.sources import lending
from lakehouse.sources.claim import LandingClaimError, record_path, recorded_world
from lakehouse.sources.lending import EconomicShock, LendingConfig
from lakehouse.sources.saas import DriftInjection, SimulationConfig, simulate

WORLD = SimulationConfig(customers=50, start_date=date(2025, 1, 1), days=5, seed=3)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_your_own_landing_files_are_never_overwritten(tmp_path: Path) -> None:
    own = tmp_path / "customers" / "date=2025-01-01" / "part-00000.csv"
    own.parent.mkdir(parents=True)
    own.write_text("customer_id,plan\nC1,pro\n")
    before = _snapshot(tmp_path)
    with pytest.raises(
        LandingClaimError,
        match=r"1 file\(s\) of saas feeds that no simulator wrote.*SCOREHOUSE_SIMULATE=0",
    ):
        simulate(WORLD, tmp_path)
    assert _snapshot(tmp_path) == before  # nothing written, the file untouched


def test_the_world_is_recorded_and_a_different_one_refused(tmp_path: Path) -> None:
    simulate(WORLD, tmp_path)
    assert recorded_world(tmp_path, "saas") == WORLD.identity()
    longer = SimulationConfig(customers=50, start_date=date(2025, 1, 1), days=8, seed=3)
    simulate(longer, tmp_path, first_day=5)  # the same world, more days: allowed
    before = _snapshot(tmp_path)
    drifted = SimulationConfig(
        customers=50,
        start_date=date(2025, 1, 1),
        days=8,
        seed=3,
        drift=[DriftInjection("usage_shift", date(2025, 1, 4), -0.3)],
    )
    with pytest.raises(
        LandingClaimError, match=r"another simulated saas world \(drift: recorded \[\]"
    ):
        simulate(drifted, tmp_path)
    assert _snapshot(tmp_path) == before


def test_a_recorded_world_reads_back_as_its_config(tmp_path: Path) -> None:
    drifted = SimulationConfig(
        customers=50,
        start_date=date(2025, 1, 1),
        days=5,
        seed=3,
        drift=[DriftInjection("price_change", date(2025, 1, 3), 0.2, {"plan": "starter"})],
        formats={"usage": "csv"},
    )
    simulate(drifted, tmp_path, last_day=1)
    assert record_path(tmp_path, "saas").is_file()
    assert SimulationConfig.from_identity(recorded_world(tmp_path, "saas") or {}, 5) == drifted


def test_the_lending_world_is_claimed_and_reads_back_as_its_config(tmp_path: Path) -> None:
    shocked = LendingConfig(
        loans=40, days=6, seed=3, shock=EconomicShock(day=3), formats={"repayments": "csv"}
    )
    lending.simulate(shocked, tmp_path, last_day=1)
    recorded = recorded_world(tmp_path, "lending") or {}
    assert LendingConfig.from_identity(recorded, 6) == shocked
    before = _snapshot(tmp_path)
    calm = LendingConfig(loans=40, days=6, seed=3, shock=None, formats={"repayments": "csv"})
    with pytest.raises(LandingClaimError, match=r"another simulated lending world \(shock: "):
        lending.simulate(calm, tmp_path)
    assert _snapshot(tmp_path) == before
