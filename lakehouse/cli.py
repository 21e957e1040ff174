"""The storage layer's ``scorehouse`` sub-commands (the entry point is ``orchestration.cli``).

scorehouse tables               each table: version, rows, size, last commit
scorehouse history TABLE        the table's commits with their metadata
scorehouse query "SQL" [--version N | --as-of TS]   read-only: no files, URLs or extensions
scorehouse optimize TABLE       compact small files (time travel stays intact)
scorehouse vacuum TABLE         delete expired files (dry run unless --apply)

Each command gets the ``Lakehouse`` (with its catalog) from the caller: the storage layer knows
no tables of its own.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import polars as pl

from lakehouse.storage import Lakehouse

LakeFactory = Callable[[], Lakehouse]


def add_commands(sub: Any, lake: LakeFactory) -> None:
    """Add the storage commands to an argparse sub-parsers object; each sets ``run``."""
    listing = sub.add_parser("tables", help="list tables with version, rows, size, last commit")
    listing.set_defaults(run=lambda args: tables(lake()))

    history = sub.add_parser("history", help="commits of a table")
    history.add_argument("table")
    history.add_argument("--limit", type=int, default=20)
    history.set_defaults(run=lambda args: _history(lake(), args))

    query = sub.add_parser(
        "query",
        help="read-only SQL over the tables (DuckDB over Delta snapshots; no files, URLs or "
        "extensions)",
    )
    query.add_argument("sql")
    at = query.add_mutually_exclusive_group()
    at.add_argument("--version", type=int, help="read the (single) table at this version")
    at.add_argument("--as-of", type=datetime.fromisoformat, help="read every table as of then")
    query.add_argument("--format", choices=["table", "csv", "json"], default="table")
    query.add_argument("--limit", type=int, default=50, help="rows printed in table format")
    query.set_defaults(run=lambda args: _query(lake(), args))

    optimize = sub.add_parser("optimize", help="compact a table's small files")
    optimize.add_argument("table")
    optimize.set_defaults(run=lambda args: _optimize(lake(), args))

    vacuum = sub.add_parser("vacuum", help="delete files older than the table's retention")
    vacuum.add_argument("table")
    vacuum.add_argument("--retention-hours", type=int)
    vacuum.add_argument("--apply", action="store_true", help="delete (default: dry run)")
    vacuum.set_defaults(run=lambda args: _vacuum(lake(), args))


def tables(lake: Lakehouse) -> int:
    """Print every catalog table with its version, rows, size and last commit."""
    rows: list[dict[str, object]] = []
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
    print_frame(pl.DataFrame(rows), "table", len(rows))
    return 0


def _history(lake: Lakehouse, args: argparse.Namespace) -> int:
    commits = lake.history(args.table, limit=args.limit)
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
    print_frame(frame, "table", len(frame))
    return 0


def _query(lake: Lakehouse, args: argparse.Namespace) -> int:
    from lakehouse.query import query

    as_of = args.as_of.replace(tzinfo=args.as_of.tzinfo or UTC) if args.as_of else None
    result = pl.from_arrow(query(lake, args.sql, version=args.version, as_of=as_of))
    assert isinstance(result, pl.DataFrame)
    print_frame(result, args.format, args.limit)
    return 0


def _optimize(lake: Lakehouse, args: argparse.Namespace) -> int:
    from lakehouse.maintenance import optimize

    print(json.dumps(optimize(lake, args.table), indent=2, default=str))
    return 0


def _vacuum(lake: Lakehouse, args: argparse.Namespace) -> int:
    from lakehouse.maintenance import vacuum

    result = vacuum(lake, args.table, retention_hours=args.retention_hours, dry_run=not args.apply)
    verb = "would delete" if result.dry_run else "deleted"
    print(f"{args.table}: {verb} {len(result.files)} files")
    return 0


def print_frame(frame: pl.DataFrame, fmt: str, limit: int) -> None:
    """Print a frame as a table, CSV or JSON lines (in CSV a list or struct cell is its JSON)."""
    if fmt == "csv":
        nested = [c for c, t in frame.schema.items() if t.is_nested()]
        if nested:
            frame = frame.with_columns(
                pl.Series(c, [json.dumps(v, default=str) for v in frame[c].to_list()])
                for c in nested
            )
        sys.stdout.write(frame.write_csv())
    elif fmt == "json":
        sys.stdout.write(frame.write_ndjson())
    else:
        with pl.Config(tbl_rows=limit, tbl_cols=-1, fmt_str_lengths=60, tbl_width_chars=200):
            print(frame)
