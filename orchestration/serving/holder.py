"""The models a use case serves, swapped whole when an alias moves: no downtime on promotion.

A ``ModelSet`` is immutable: the ``champion``, and the ``canary`` and ``shadow`` when the
registered model has those aliases, each loaded with its TreeSHAP explainer built and warmed. A
request takes the current set once when it starts and scores with it to the end, so a promotion
never mixes versions within a request and in-flight requests finish on the model they started
with. ``ModelHolder.refresh`` (called every few seconds) asks MLflow where the aliases point and,
when one moved, loads the new version, checks it against the feature contract, warms it by
scoring one row through the batch code path, and only then replaces the set: one reference
assignment. A version that fails to load or check is logged and counted (once per distinct
failure) and tried again at the next poll; meanwhile the previous set stays.

Canary routing is by a stable hash of the entity id (CRC-32), so an entity always meets the same
model while the canary's share and version stay the same.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from feast import FeatureStore

from models.explain import TreeShapExplainer, UnsupportedModelError
from models.lifecycle.registry import CHAMPION, ModelRegistry
from models.scoring.batch import ScoringModel, check_model_features, load_model, score_rows
from models.usecase import UseCase

logger = logging.getLogger(__name__)

CANARY = "canary"
SHADOW = "shadow"
ROLES = (CHAMPION, CANARY, SHADOW)
_HASH_SPACE = 10_000
T = TypeVar("T")


@dataclass(frozen=True)
class ServedModel:
    """One loaded model version in one role, with its warmed explainer."""

    role: str
    model: ScoringModel
    explainer: TreeShapExplainer

    @property
    def version(self) -> str:
        return self.model.version


@dataclass(frozen=True)
class ModelSet:
    """What a use case serves at one moment (see the module docstring)."""

    champion: ServedModel
    canary: ServedModel | None = None
    shadow: ServedModel | None = None
    canary_share: float = 0.0

    def route(self, entity_id: str) -> ServedModel:
        """The model that answers for this entity: the canary for its share of ids."""
        if self.canary is not None and in_canary(entity_id, self.canary_share):
            return self.canary
        return self.champion

    def versions(self) -> dict[str, str]:
        """Version by role, for the roles that are set."""
        return {m.role: m.version for m in (self.champion, self.canary, self.shadow) if m}

    def models(self) -> list[ServedModel]:
        return [m for m in (self.champion, self.canary, self.shadow) if m is not None]


def in_canary(entity_id: str, share: float) -> bool:
    """True for the ``share`` of ids whose CRC-32 falls below it (stable across processes)."""
    bucket = zlib.crc32(entity_id.encode()) % _HASH_SPACE
    return bucket < round(share * _HASH_SPACE)


def _direct(action: Callable[[], T]) -> T:
    return action()


class ModelHolder:
    """The current ``ModelSet`` of one use case, following its aliases in MLflow.

    ``compute`` runs a function where scoring runs (the service's scoring thread), so building
    and warming an explainer never runs numba kernels concurrently with a request's scoring.
    """

    def __init__(
        self,
        use_case: UseCase,
        registry: ModelRegistry,
        store: Callable[[], FeatureStore],
        canary_share: float,
        *,
        compute: Callable[[Callable[[], ServedModel]], ServedModel] = _direct,
        on_swap: Callable[[ModelSet, dict[str, str]], None] | None = None,
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        self.use_case = use_case
        self.registry = registry
        self._store = store
        self.canary_share = canary_share
        self._compute = compute
        self._on_swap = on_swap
        self._on_failure = on_failure
        self.current: ModelSet | None = None
        self.problem: str | None = "models not loaded yet"
        self.awaiting_champion = False
        """True while the registry holds no champion for this use case (never promoted)."""
        self._failed: dict[str, str] = {}  # version → why it was last refused
        self._last_failure: str | None = None
        self._settled: tuple[int, ...] | None = None  # registry marker with nothing pending

    def refresh(self) -> bool:
        """Follow the aliases; True when the served set changed. Never raises.

        The registry is not queried while its change marker (``ModelRegistry.change_marker``)
        is the one seen by the last refresh that left nothing pending: a query of a local store
        took milliseconds of the interpreter lock that requests wait for, every poll."""
        try:
            marker = self.registry.change_marker()
            if marker is not None and marker == self._settled:
                return False
            wanted = self._wanted()
        except Exception as exc:
            self._fail(f"model registry unreachable: {_first_line(exc)}")
            return False
        changed, settled = self._follow(wanted)
        self._settled = marker if settled else None
        return changed

    def _follow(self, wanted: dict[str, str]) -> tuple[bool, bool]:
        """Serve the ``wanted`` versions: (the set changed, nothing is left to retry)."""
        self.awaiting_champion = CHAMPION not in wanted and self.current is None
        if CHAMPION not in wanted:
            if self.current is None:
                self.problem = (
                    f"model {self.registry.model_name} has no {CHAMPION!r} alias: train and "
                    "promote a model first"
                )
            return False, True
        current = self.current
        if current is not None and current.versions() == wanted:
            return False, True
        loaded: dict[str, ServedModel] = {}
        for role, version in wanted.items():
            found = self._reuse(role, version)
            if found is None:
                try:
                    found = self._load(role, version)
                except Exception as exc:
                    why = _first_line(exc)
                    if self._failed.get(version) != why:
                        self._failed[version] = why
                        self._fail(f"{role} v{version} refused: {why}")
                    continue
                self._failed.pop(version, None)
            loaded[role] = found
        settled = len(loaded) == len(wanted)
        if CHAMPION not in loaded:
            return False, False  # the previous set (if any) stays
        new = ModelSet(
            champion=loaded[CHAMPION],
            canary=loaded.get(CANARY),
            shadow=loaded.get(SHADOW),
            canary_share=self.canary_share,
        )
        if current is not None and new.versions() == current.versions():
            return False, settled
        self._last_failure = None
        self.current = new  # the swap: one reference; requests hold the set they started with
        self.problem = None
        if self._on_swap is not None:
            self._on_swap(new, current.versions() if current else {})
        logger.info("%s now serves %s", self.use_case.name, new.versions())
        return True, settled

    def _wanted(self) -> dict[str, str]:
        """The served roles' versions, read in one query (a consistent view of the aliases)."""
        aliases = self.registry.alias_versions()
        return {role: aliases[role] for role in ROLES if role in aliases}

    def _reuse(self, role: str, version: str) -> ServedModel | None:
        """A version already loaded (in any role) is reused, relabelled for its new role."""
        if self.current is None:
            return None
        for served in self.current.models():
            if served.version == version:
                if served.role == role:
                    return served
                return ServedModel(role, replace(served.model, alias=role), served.explainer)
        return None

    def _load(self, role: str, version: str) -> ServedModel:
        model = replace(load_model(self.registry, version=version), alias=role)
        check_model_features(model, self._store(), self.use_case.encoding)
        return self._compute(lambda: warm(self.use_case, role, model))

    def _fail(self, message: str) -> None:
        if message == self._last_failure:
            return  # reported already: a registry outage is not a new failure every poll
        self._last_failure = message
        logger.warning("%s: %s", self.use_case.name, message)
        if self.current is None:
            self.problem = message
        if self._on_failure is not None:
            self._on_failure(message)


def warm(use_case: UseCase, role: str, model: ScoringModel) -> ServedModel:
    """Compile the model's trees, build its explainer and score one all-missing row as requests
    are scored (``encode_rows``, ``score_rows``), so the first request pays no compilation or
    first-call cost."""
    # One prediction thread, as the scoring thread's numba kernels: xgboost's thread pool took
    # twice as long as one thread to score one customer.
    model.booster.set_param({"nthread": 1})
    try:
        # a request's few rows: the same scores as xgboost's, without its per-call cost
        model = model.compiled()
    except UnsupportedModelError as exc:
        logger.warning("%s v%s predicts with xgboost alone: %s", model.name, model.version, exc)
    explainer = model.explainer()
    matrix = use_case.encoding.encode_rows([{}])
    scored = score_rows(model, explainer, use_case, matrix, use_case.scoring)
    scored.decision_rows(use_case.encoding.names, use_case.reasons)
    return ServedModel(role, model, explainer)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__
