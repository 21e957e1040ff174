"""No gap online across a promotion: while the gate swaps the champion alias and the next
scoring run serves the new champion, every lookup of every scored customer returns a score."""

from __future__ import annotations

import threading

import polars as pl

from models.lifecycle.gate import run_gate
from models.lifecycle.policy import PromotionPolicy
from models.scoring.online import SERVED_FIELDS, view_name
from models.scoring.runs import current_predictions
from orchestration.resources import FeatureStoreResource
from tests.scored_world import ScoredWorld, make_champion, train_and_register

ADMIT = PromotionPolicy(evidence="shadow", admission_tolerance=1.0, max_calibration_error=1.0)
PROMOTE = PromotionPolicy(
    # No matured shadow rows in this world: after max_shadow_days the policy decides on the
    # out-of-time rows, and the margin is waived so that this decision promotes.
    evidence="shadow_or_out_of_time",
    min_shadow_days=0,
    max_shadow_days=0,
    roc_auc_margin=-1.0,
    max_calibration_error=1.0,
)


def test_no_lookup_goes_without_a_score_across_a_promotion(scored_world: ScoredWorld) -> None:
    world = scored_world
    day = world.days[-1]
    tables = world.use_case.tables.scoring
    key = tables.join_key
    served = current_predictions(world.lake, tables).filter(pl.col("as_of_date") == day).collect()
    ids = sorted(served[key].to_list())
    old = world.champion
    candidate = train_and_register(world.lake, world.registry, world.use_case, seed=23)
    admitted = run_gate(world.registry, world.lake, world.use_case, ADMIT)
    assert [d.decision for d in admitted.decisions] == ["shadow"]
    world.score(day)  # champion served, the shadow model beside it

    features = [f"{view_name(tables)}:{f}" for f in SERVED_FIELDS]
    stop, lookups = threading.Event(), []
    problems: list[str] = []

    def poll() -> None:
        # The reader's own store (an application's), opened in its thread.
        store = FeatureStoreResource(lakehouse_uri=str(world.lake.uri)).get()
        while not stop.is_set():
            try:
                online = store.get_online_features(
                    features=features, entity_rows=[{key: i} for i in ids]
                ).to_dict()
            except Exception as exc:  # a lookup that fails is a gap too
                problems.append(f"lookup failed: {exc!r}")
                continue
            missing = [i for i, s in zip(ids, online["score"], strict=True) if s is None]
            if missing:
                problems.append(f"{len(missing)} customers without a score, e.g. {missing[0]}")
            lookups.append(set(online["model_version"]))

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        decided = run_gate(world.registry, world.lake, world.use_case, PROMOTE)
        world.score(day)  # the next scoring run: the new champion, nothing in shadow
    finally:
        stop.set()
        poller.join()
        make_champion(world.registry, old)  # the module's world keeps its champion
    assert [d.decision for d in decided.decisions] == ["promote", "retire"]
    assert problems == []
    assert len(lookups) >= 3
    # Every lookup saw one champion: the old one until the new run's online write, then the new.
    assert all(seen <= {old, candidate} for seen in lookups)
    assert lookups[0] == {old} and lookups[-1] == {candidate}
