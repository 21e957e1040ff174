"""``scorehouse``: the command line for what is not Dagster's job.

scorehouse demo                 simulate a SaaS world and build every table (embedded defaults)
scorehouse tables               each table: version, rows, size, last commit
scorehouse history TABLE        the table's commits with their metadata
scorehouse query "SQL" [--version N | --as-of TS]
scorehouse model list|rollback  model versions, aliases and metrics; re-point the champion
scorehouse replay RUN_ID        recompute a scoring run from its recorded versions; exact or not
scorehouse serve                Feast feature server on loopback (online features over HTTP)
scorehouse optimize TABLE       compact small files (time travel stays intact)
scorehouse vacuum TABLE         delete expired files (dry run unless --apply)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

import polars as pl

from lakehouse.errors import LakehouseError
from lakehouse.model_cli import add_model_commands
from lakehouse.storage import Lakehouse


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (LakehouseError, ValueError, FileNotFoundError) as exc:
        print(f"scorehouse: error: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scorehouse", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="simulate a world and materialize the pipeline end to end")
    demo.add_argument("--customers", type=int, help="customers at the start (default 2000)")
    demo.add_argument("--days", type=int, help="days to simulate (default 200)")
    demo.add_argument("--seed", type=int, help="simulation seed (default 7)")
    demo.add_argument("--start-date", help="first day, YYYY-MM-DD (default 2025-01-01)")
    demo.add_argument(
        "--drift-day", type=int, help="inject drift from this day (default: 12 days before the end)"
    )
    demo.add_argument("--no-drift", action="store_true", help="simulate without drift")
    demo.add_argument("--usage-shift", type=float, help="usage change at the drift (-0.35)")
    demo.set_defaults(run=_demo)

    tables = sub.add_parser("tables", help="list tables with version, rows, size, last commit")
    tables.set_defaults(run=_tables)

    history = sub.add_parser("history", help="commits of a table")
    history.add_argument("table")
    history.add_argument("--limit", type=int, default=20)
    history.set_defaults(run=_history)

    query = sub.add_parser("query", help="SQL over the tables (DuckDB over Delta snapshots)")
    query.add_argument("sql")
    at = query.add_mutually_exclusive_group()
    at.add_argument("--version", type=int, help="read the (single) table at this version")
    at.add_argument("--as-of", type=datetime.fromisoformat, help="read every table as of then")
    query.add_argument("--format", choices=["table", "csv", "json"], default="table")
    query.add_argument("--limit", type=int, default=50, help="rows printed in table format")
    query.set_defaults(run=_query)

    optimize = sub.add_parser("optimize", help="compact a table's small files")
    optimize.add_argument("table")
    optimize.set_defaults(run=_optimize)

    replay = sub.add_parser("replay", help="recompute a scoring run and compare it exactly")
    replay.add_argument("run_id", help="scoring run id, or a Dagster run id (all its days)")
    replay.set_defaults(run=_replay)

    add_model_commands(sub)

    serve = sub.add_parser("serve", help="Feast feature server (HTTP) on loopback")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=6566)
    serve.set_defaults(run=_serve)

    vacuum = sub.add_parser("vacuum", help="delete files older than the table's retention")
    vacuum.add_argument("table")
    vacuum.add_argument("--retention-hours", type=int)
    vacuum.add_argument("--apply", action="store_true", help="delete (default: dry run)")
    vacuum.set_defaults(run=_vacuum)
    return parser


def _demo(args: argparse.Namespace) -> int:
    # The world settings are read when the Dagster definitions load: set them first.
    for flag, env in [
        ("customers", "SCOREHOUSE_SIM_CUSTOMERS"),
        ("days", "SCOREHOUSE_SIM_DAYS"),
        ("seed", "SCOREHOUSE_SIM_SEED"),
        ("start_date", "SCOREHOUSE_START_DATE"),
        ("drift_day", "SCOREHOUSE_SIM_DRIFT_DAY"),
        ("usage_shift", "SCOREHOUSE_SIM_USAGE_SHIFT"),
    ]:
        if getattr(args, flag) is not None:
            os.environ[env] = str(getattr(args, flag))
    if args.no_drift:
        os.environ["SCOREHOUSE_SIM_DRIFT_DAY"] = ""
    elif "SCOREHOUSE_SIM_DRIFT_DAY" not in os.environ:
        # The demo shows monitoring at work: a product change shortly before the scored days.
        days = int(os.environ.get("SCOREHOUSE_SIM_DAYS", "200"))
        os.environ["SCOREHOUSE_SIM_DRIFT_DAY"] = str(max(days - 12, 1))
    from orchestration.demo import run_demo

    run_demo()
    print()
    return _tables(args)


def _tables(args: argparse.Namespace) -> int:
    lake = Lakehouse()
    rows = []
    for spec in lake.catalog:
        if not lake.exists(spec.name):
            rows.append(
                {
                    "table": spec.name,
                    "version": None,
                    "rows": None,
                    "size_mb": None,
                    "last_commit": "(not written)",
                }
            )
            continue
        dt = lake.delta_table(spec.name)
        actions = pl.DataFrame(dt.get_add_actions(flatten=True))
        last = dt.history(1)[0]
        when = datetime.fromtimestamp(last["timestamp"] / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        operation = last.get("scorehouse.operation", last["operation"])
        rows.append(
            {
                "table": spec.name,
                "version": dt.version(),
                "rows": int(actions["num_records"].sum()) if len(actions) else 0,
                "size_mb": round(int(actions["size_bytes"].sum()) / 2**20, 2)
                if len(actions)
                else 0.0,
                "last_commit": f"{when} {operation}",
            }
        )
    _print(pl.DataFrame(rows), "table", len(rows))
    return 0


def _history(args: argparse.Namespace) -> int:
    commits = Lakehouse().history(args.table, limit=args.limit)
    frame = pl.DataFrame(
        [
            {
                "version": c["version"],
                "timestamp": datetime.fromtimestamp(c["timestamp"] / 1000, UTC).isoformat(),
                "operation": c.get("scorehouse.operation", c["operation"]),
                "rows": c.get("scorehouse.rows"),
                "run_id": c.get("dagster.run_id"),
                "asset": c.get("dagster.asset_key"),
                "partition": c.get("dagster.partition"),
                "code_version": c.get("scorehouse.code_version"),
            }
            for c in commits
        ]
    )
    _print(frame, "table", len(frame))
    return 0


def _query(args: argparse.Namespace) -> int:
    from lakehouse.query import query

    as_of = args.as_of.replace(tzinfo=args.as_of.tzinfo or UTC) if args.as_of else None
    result = pl.from_arrow(query(Lakehouse(), args.sql, version=args.version, as_of=as_of))
    assert isinstance(result, pl.DataFrame)
    _print(result, args.format, args.limit)
    return 0


def _optimize(args: argparse.Namespace) -> int:
    from lakehouse.maintenance import optimize

    print(json.dumps(optimize(Lakehouse(), args.table), indent=2, default=str))
    return 0


def _replay(args: argparse.Namespace) -> int:
    from feature_repo.config import feature_store
    from models.registry import ModelRegistry
    from models.replay import find_runs, replay_run

    lake = Lakehouse()
    registry = ModelRegistry()
    status = 0
    for record in find_runs(lake, args.run_id).iter_rows(named=True):
        report = replay_run(lake, lambda pins: feature_store(pins=pins), registry, record)
        if report.matches:
            print(f"{report.scoring_run_id}: exact match ({report.rows} predictions)")
        else:
            status = 1
            print(f"{report.scoring_run_id}: {len(report.differences)} differences")
            for line in report.differences:
                print(f"  - {line}")
    return status


def _serve(args: argparse.Namespace) -> int:
    from feature_repo.config import feature_store

    print(f"Feast feature server on http://{args.host}:{args.port} (POST /get-online-features)")
    feature_store().serve(host=args.host, port=args.port, type_="http", no_access_log=True)
    return 0


def _vacuum(args: argparse.Namespace) -> int:
    from lakehouse.maintenance import vacuum

    result = vacuum(
        Lakehouse(), args.table, retention_hours=args.retention_hours, dry_run=not args.apply
    )
    verb = "would delete" if result.dry_run else "deleted"
    print(f"{args.table}: {verb} {len(result.files)} files")
    return 0


def _print(frame: pl.DataFrame, fmt: str, limit: int) -> None:
    if fmt == "csv":
        sys.stdout.write(frame.write_csv())
    elif fmt == "json":
        sys.stdout.write(frame.write_ndjson())
    else:
        with pl.Config(tbl_rows=limit, tbl_cols=-1, fmt_str_lengths=60, tbl_width_chars=200):
            print(frame)


if __name__ == "__main__":
    raise SystemExit(main())
