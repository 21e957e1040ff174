"""``scorehouse demo``: simulated worlds run as their schedules and sensors would run them.

* ``churn`` (``orchestration.demo.churn``): a SaaS company's customers through a product
  change and a concept shift;
* ``credit`` (``orchestration.demo.credit``): a lender's book through an economic shock;
* ``all``: both, one after the other, in one lakehouse, one Feast repo and one Dagster
  instance (the code location holds both use cases throughout).

The world settings are read when the definitions load (``orchestration.settings``): the CLI
sets them first. Safe to run twice: the simulators are deterministic, ingestion replaces or
merges by key.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

USE_CASES = ("churn", "credit")


def run_demo(use_cases: Sequence[str] = ("churn",)) -> None:
    """Walk each use case's world in turn and print what the loop did."""
    from dagster import DagsterInstance

    from orchestration.definitions import defs
    from orchestration.demo import churn, credit
    from orchestration.demo.clock import Clock
    from orchestration.runs import dagster_home

    unknown = sorted(set(use_cases) - set(USE_CASES))
    if unknown:
        raise ValueError(f"no demo for use case {unknown}: expected {USE_CASES} or all")
    dagster_home()
    instance = DagsterInstance.get()
    clock = Clock(instance, defs())
    walks = {"churn": churn.walk, "credit": credit.walk}
    for name in use_cases:
        started = time.perf_counter()
        walks[name](instance, clock)
        print(f"[scorehouse] {name} demo done in {time.perf_counter() - started:.0f}s", flush=True)
