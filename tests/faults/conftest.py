"""The fault suite's world: built once per session, with one reference outcome per killed job."""

from __future__ import annotations

import pytest

from tests.faults.world import FaultWorld, build_world


@pytest.fixture(scope="session")
def fault_world(tmp_path_factory: pytest.TempPathFactory) -> FaultWorld:
    return build_world(tmp_path_factory.mktemp("faults"))
