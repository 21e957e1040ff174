"""The model layer's ``scorehouse`` sub-commands (the entry point is ``orchestration.cli``).

scorehouse model list [--use-case NAME]               versions, aliases, test metrics, decisions
scorehouse model rollback VERSION [--use-case NAME] [--reason TEXT]
                                                      point 'champion' at VERSION (a decision)
scorehouse model card NAME VERSION [--out DIR]        the model documentation pack (HTML + MD)
scorehouse model approve NAME VERSION --role R --by WHO [--note TEXT]
                                                      record an approval in MLflow
scorehouse replay RUN_ID|REQUEST_ID                   recompute a scoring run or an on-demand
                                                      request of the scoring service; exact or not
scorehouse online check [--use-case NAME] [--repair]  online store vs the recorded scores

The caller passes a ``Context`` with the use cases, the lakehouse, the registry and the feature
store, so this layer imports neither Dagster nor the Feast repo. MLflow is imported only when a
model command runs, so the other commands stay fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from lakehouse.storage import Lakehouse

if TYPE_CHECKING:
    from feast import FeatureStore

    from models.lifecycle.registry import ModelRegistry
    from models.usecase import UseCase, UseCases


@dataclass(frozen=True)
class Context:
    """What the commands need, made by the entry point."""

    use_cases: Callable[[], UseCases]
    lakehouse: Callable[[], Lakehouse]
    feature_store: Callable[[dict[str, int]], FeatureStore]

    def registry(self, use_case: UseCase) -> ModelRegistry:
        from models.lifecycle.registry import ModelRegistry

        return ModelRegistry(use_case.model_name)

    def use_case(self, name: str | None) -> UseCase:
        """The named use case, or the only one."""
        use_cases = self.use_cases()
        if name is None:
            if len(use_cases) != 1:
                raise ValueError(f"name a use case with --use-case (one of {sorted(use_cases)})")
            return next(iter(use_cases.values()))
        return use_cases[name]


def add_commands(sub: Any, context: Context) -> None:
    """Add ``model`` (with ``list`` and ``rollback``) and ``replay`` to argparse sub-parsers."""
    model = sub.add_parser("model", help="model versions: list, rollback, card, approve")
    commands = model.add_subparsers(required=True, metavar="ACTION")
    listing = commands.add_parser("list", help="versions with aliases and key metrics")
    listing.add_argument("--use-case", help="whose model (default: the only use case)")
    listing.set_defaults(run=lambda args: run_list(context, args))
    rollback = commands.add_parser("rollback", help="point the champion alias at VERSION")
    rollback.add_argument("version", help="registered version number of the model")
    rollback.add_argument("--use-case", help="whose model (default: the only use case)")
    rollback.add_argument("--reason", default="", help="why (stored with the decision)")
    rollback.set_defaults(run=lambda args: run_rollback(context, args))
    card = commands.add_parser("card", help="write the model card of a version (HTML + MD)")
    card.add_argument("name", help="registered model name (the use case's)")
    card.add_argument("version", help="registered version number")
    card.add_argument("--out", type=Path, help="folder (default: reports/model_cards/...)")
    card.add_argument(
        "--no-mlflow", action="store_true", help="only write the files (no artifact, no tag)"
    )
    card.set_defaults(run=lambda args: run_card(context, args))
    approve = commands.add_parser("approve", help="record an approval of a version in MLflow")
    approve.add_argument("name", help="registered model name (the use case's)")
    approve.add_argument("version", help="registered version number")
    approve.add_argument("--role", required=True, help="e.g. model_risk, business_owner")
    approve.add_argument("--by", required=True, help="who approves")
    approve.add_argument("--note", default="", help="conditions or comments")
    approve.set_defaults(run=lambda args: run_approve(context, args))

    online = sub.add_parser("online", help="the online store against the recorded scores")
    actions = online.add_subparsers(required=True, metavar="ACTION")
    check = actions.add_parser(
        "check", help="compare every served entity with its latest recorded score"
    )
    check.add_argument("--use-case", help="whose scores (default: the only use case)")
    check.add_argument("--repair", action="store_true", help="rewrite the entities that differ")
    check.set_defaults(run=lambda args: run_online_check(context, args))

    replay = sub.add_parser(
        "replay", help="recompute a scoring run or an on-demand request and compare it exactly"
    )
    replay.add_argument(
        "run_id",
        help="scoring run id, a Dagster run id (all its days), or a scoring service request id",
    )
    replay.set_defaults(run=lambda args: run_replay(context, args))


def versions_frame(registry: ModelRegistry) -> pl.DataFrame:
    """One row per registered version, newest first, with its lifecycle state."""
    from models.lifecycle.states import state_of

    aliases = registry.aliases()
    rows = []
    for v in registry.versions():
        tags = v.tags
        rows.append(
            {
                "version": int(v.version),
                "aliases": ",".join(aliases.get(str(v.version), [])),
                "state": state_of(tags, aliases.get(str(v.version))),
                "created": datetime.fromtimestamp(v.creation_timestamp / 1000, UTC).strftime(
                    "%Y-%m-%d %H:%M"
                ),
                "test_roc_auc": _float(tags.get("test_roc_auc")),
                "test_ece": _float(tags.get("test_ece")),
                "validation_roc_auc": _float(tags.get("validation_roc_auc")),
                "training_set_version": tags.get("training_set_version"),
                "decision": tags.get("decision", ""),
                "run_id": v.run_id,
            }
        )
    schema = {
        "version": pl.Int64,
        "aliases": pl.String,
        "state": pl.String,
        "created": pl.String,
        "test_roc_auc": pl.Float64,
        "test_ece": pl.Float64,
        "validation_roc_auc": pl.Float64,
        "training_set_version": pl.String,
        "decision": pl.String,
        "run_id": pl.String,
    }
    return pl.DataFrame(rows, schema=schema)


def run_list(context: Context, args: argparse.Namespace) -> int:
    from models.lifecycle.registry import RegistryError

    use_case = context.use_case(args.use_case)
    try:
        frame = versions_frame(context.registry(use_case))
    except RegistryError as exc:
        return _fail(exc)
    if frame.is_empty():
        print(f"model {use_case.model_name}: no registered versions")
        return 0
    with pl.Config(tbl_rows=-1, tbl_cols=-1, fmt_str_lengths=40, tbl_width_chars=200):
        print(frame)
    return 0


def run_rollback(context: Context, args: argparse.Namespace) -> int:
    from models.lifecycle.promotion import rollback
    from models.lifecycle.registry import RegistryError

    use_case = context.use_case(args.use_case)
    try:
        decision = rollback(
            context.registry(use_case),
            context.lakehouse(),
            use_case,
            args.version,
            reason=args.reason,
        )
    except RegistryError as exc:
        return _fail(exc)
    print(f"champion is now v{decision.challenger_version} ({decision.reason})")
    return 0


def _model_use_case(context: Context, name: str) -> UseCase:
    found = [u for u in context.use_cases().values() if u.model_name == name]
    if not found:
        known = sorted(u.model_name for u in context.use_cases().values())
        raise ValueError(f"no use case has a model named {name!r} (models: {known})")
    return found[0]


def run_card(context: Context, args: argparse.Namespace) -> int:
    from models.card.publish import write_card
    from models.lifecycle.registry import RegistryError

    use_case = _model_use_case(context, args.name)
    try:
        files = write_card(
            context.registry(use_case),
            context.lakehouse(),
            use_case,
            args.version,
            args.out,
            log_to_mlflow=not args.no_mlflow,
        )
    except RegistryError as exc:
        return _fail(exc)
    print(f"model card of {args.name} v{args.version}:\n  {files.html}\n  {files.markdown}")
    if files.artifact_uri:
        print(f"  logged to MLflow: {files.artifact_uri} (version tag model_card)")
    return 0


def run_approve(context: Context, args: argparse.Namespace) -> int:
    from models.card.publish import record_approval
    from models.lifecycle.registry import RegistryError

    use_case = _model_use_case(context, args.name)
    try:
        entry = record_approval(
            context.registry(use_case), args.version, args.role, args.by, args.note
        )
    except RegistryError as exc:
        return _fail(exc)
    print(f"{args.name} v{args.version}: approval.{args.role} by {entry['by']} at {entry['at']}")
    return 0


def run_replay(context: Context, args: argparse.Namespace) -> int:
    from models.scoring.replay import find_runs, replay_run

    lake = context.lakehouse()
    status, found = 0, 0
    for use_case in context.use_cases().values():
        registry = context.registry(use_case)
        for record in find_runs(lake, use_case, args.run_id).iter_rows(named=True):
            found += 1
            report = replay_run(lake, use_case, context.feature_store, registry, record)
            if report.matches:
                print(f"{report.scoring_run_id}: exact match ({report.rows} predictions)")
            else:
                status = 1
                print(f"{report.scoring_run_id}: {len(report.differences)} differences")
                for line in report.differences:
                    print(f"  - {line}")
    if not found:
        found, status = _replay_requests(context, lake, args.run_id)
    if not found:
        raise ValueError(
            f"no scoring run {args.run_id!r} in any use case's scoring runs, nor an on-demand "
            "request of that id in their online predictions"
        )
    return status


def _replay_requests(context: Context, lake: Lakehouse, request_id: str) -> tuple[int, int]:
    """Replay an on-demand request of the scoring service; (requests found, exit status)."""
    from models.scoring.replay import find_request, replay_request

    found = status = 0
    for use_case in context.use_cases().values():
        rows = find_request(lake, use_case, request_id)
        if rows.is_empty():
            continue
        found += 1
        report = replay_request(use_case, context.registry(use_case), rows)
        refused = rows.filter(pl.col("outcome") != "scored")
        if report.rows == 0 and refused.height:
            first = refused.row(0, named=True)
            print(
                f"{request_id}: refused with {first['status']} {first['error_code']} "
                f"({first['error_message']}); nothing to recompute"
            )
        elif report.matches:
            print(f"{request_id}: exact match ({report.rows} on-demand decisions)")
        else:
            status = 1
            print(f"{request_id}: {len(report.differences)} differences")
            for line in report.differences:
                print(f"  - {line}")
    return found, status


def _fail(exc: Exception) -> int:
    print(f"scorehouse: error: {exc}", file=sys.stderr)
    return 1


def _float(value: str | None) -> float | None:
    return float(value) if value else None


def run_online_check(context: Context, args: argparse.Namespace) -> int:
    """Exit 0 when the online store serves exactly the recorded scores (after ``--repair``)."""
    from models.scoring.online import compare_online, repair_online

    use_case = context.use_case(args.use_case)
    lake, store, tables = context.lakehouse(), context.feature_store({}), use_case.tables.scoring
    diff = compare_online(store, lake, tables)
    key = tables.join_key
    print(
        f"{use_case.name}: {diff.checked} entities checked, {len(diff.entities)} differ from "
        "their latest recorded score"
    )
    if diff.entities:
        print(diff.differing.head(20))
    if not diff.entities or not args.repair:
        return 1 if diff.entities else 0
    written = repair_online(store, lake, tables, diff)
    again = compare_online(store, lake, tables, diff.entities)
    print(f"repaired {written} entities; {len(again.entities)} still differ")
    if again.entities:
        print(again.differing.select(key, "field").head(20))
    return 1 if again.entities else 0
