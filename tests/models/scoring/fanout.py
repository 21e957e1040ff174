"""Eight entity buckets of one scoring run, scored by eight processes at once into the same
tables (``score_buckets_concurrently``): what the fan-out does on a multiprocess or distributed
executor, without the executor. Each process starts fresh (spawn) and begins scoring at the
same instant, so the commits race."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from dataclasses import replace
from datetime import UTC, datetime

from feature_repo.config import feature_store
from models.lifecycle.registry import ModelRegistry
from models.scoring.batch import ScoringRun, load_model
from models.scoring.buckets import BucketScores, score_bucket
from models.scoring.policy import ScoringPolicy
from models.usecase import load_use_cases


def _score(task: dict) -> dict:
    os.environ.update(task["env"])
    use_cases = load_use_cases()
    use_case = use_cases[task["use_case"]]
    lake = use_cases.lakehouse(task["lake"])
    versions = task["run"]["source_versions"]
    store = feature_store(task["lake"], pins=versions)
    registry = ModelRegistry(use_case.model_name, task["tracking_uri"])
    model = replace(load_model(registry, version=task["model_version"]), alias=task["alias"])
    run = ScoringRun(
        **{
            **task["run"],
            "as_of": datetime.fromisoformat(task["run"]["as_of"]).date(),
            "scored_at": datetime.fromisoformat(task["run"]["scored_at"]),
        }
    )
    time.sleep(max(0.0, task["start_at"] - time.time()))  # every bucket commits at about once
    scored = score_bucket(
        lake,
        store,
        use_case,
        model,
        run,
        ScoringPolicy(**task["policy"]),
        task["bucket"],
        task["buckets"],
    )
    return scored.to_json()


def score_buckets_concurrently(
    *,
    use_case: str,
    lake: str,
    tracking_uri: str,
    model_version: str,
    alias: str,
    run: ScoringRun,
    policy: ScoringPolicy,
    buckets: int = 8,
    env: dict[str, str] | None = None,
    start_in_s: float = 20.0,
) -> list[BucketScores]:
    """Score ``buckets`` buckets of ``run`` in as many fresh processes; their results."""
    start_at = time.time() + start_in_s
    base = {
        "use_case": use_case,
        "lake": lake,
        "tracking_uri": tracking_uri,
        "model_version": model_version,
        "alias": alias,
        "policy": policy.to_json(),
        "buckets": buckets,
        "start_at": start_at,
        "env": {
            **{k: v for k, v in os.environ.items() if k.startswith(("SCOREHOUSE_", "AWS_"))},
            **(env or {}),
        },
        "run": json.loads(
            json.dumps(
                {
                    "scoring_run_id": run.scoring_run_id,
                    "as_of": run.as_of.isoformat(),
                    "dagster_run_id": run.dagster_run_id,
                    "code_version": run.code_version,
                    "source_versions": run.source_versions,
                    "scored_at": run.scored_at.astimezone(UTC).isoformat(),
                }
            )
        ),
    }
    context = multiprocessing.get_context("spawn")
    with context.Pool(buckets) as pool:
        results = pool.map(_score, [{**base, "bucket": b} for b in range(buckets)])
    return [BucketScores.from_json(r) for r in results]
