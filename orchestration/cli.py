"""``scorehouse``: the command line for what is not Dagster's job (one entry point).

scorehouse demo [--use-case churn|credit|all]   simulate a world, run its closed loop (defaults)
scorehouse tables | history | query | optimize | vacuum      the lakehouse (``lakehouse.cli``)
scorehouse model list|rollback|card|approve | replay         models and runs (``models.cli``)
scorehouse init NAME --kind snapshot|events --data FILE      scaffold a use-case spec
scorehouse spec check NAME|FILE [--data FILE]                validate a spec (and its data)
scorehouse land NAME FILE [--date D]                         put a data file into the landing folder
scorehouse run NAME JOB [--date D | --from D --to D]         run one of a use case's jobs
scorehouse use-cases            the use cases in effect and where their specs are
scorehouse doctor [--repair]    what killed runs left behind: dead runs, orphan versions, rows
scorehouse serve                the scoring service for apps on loopback (docs/serving.md)

Each package owns its sub-commands; this module wires them to the project's catalog, registry
and feature store.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from lakehouse import cli as lakehouse_cli
from lakehouse.errors import LakehouseError
from models import cli as models_cli
from models.usecase import SpecError, load_use_cases
from orchestration import profiles
from orchestration.demo import USE_CASES as DEMO_USE_CASES  # light: imports no settings
from orchestration.errors import RunFailedError
from orchestration.profiles import ServiceUnavailableError


def _context() -> models_cli.Context:
    from feature_repo.config import feature_store

    return models_cli.Context(
        use_cases=load_use_cases,
        lakehouse=lambda: load_use_cases().lakehouse(),
        feature_store=lambda pins: feature_store(pins=pins),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        profiles.activate()  # SCOREHOUSE_PROFILE: where the tables, registry and stores are
        return int(args.run(args) or 0)
    except (
        LakehouseError,
        SpecError,
        RunFailedError,
        ServiceUnavailableError,
        ValueError,
        KeyError,
        FileNotFoundError,
    ) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"scorehouse: error: {message}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scorehouse", description="Scorehouse: tables, models, use cases and runs."
    )
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="simulate a world and run its closed loop end to end")
    demo.add_argument(
        "--use-case",
        choices=(*DEMO_USE_CASES, "all"),
        default="churn",
        help="whose world: the SaaS company's (churn, default), the lender's (credit), or both",
    )
    demo.add_argument("--customers", type=int, help="customers at the start (default 2000)")
    demo.add_argument("--days", type=int, help="days of the SaaS world (default 280)")
    demo.add_argument("--seed", type=int, help="simulation seed (default 7)")
    demo.add_argument(
        "--start-date",
        help="first day of the SaaS world, YYYY-MM-DD (default 2025-01-01)",
    )
    demo.add_argument("--loans", type=int, help="open loans at the start (default 2000)")
    demo.add_argument(
        "--lending-start-date", help="first day of the lending world (default 2023-01-01)"
    )
    demo.add_argument("--lending-days", type=int, help="days of the lending world (default 950)")
    demo.add_argument("--shock-day", type=int, help="the economic shock's day (default 540)")
    demo.add_argument(
        "--drift-day", type=int, help="usage shift (covariate) from this day (default 126)"
    )
    demo.add_argument(
        "--concept-day", type=int, help="concept shift (churn_risk) from this day (default 130)"
    )
    demo.add_argument("--no-drift", action="store_true", help="simulate without either shift")
    demo.add_argument("--usage-shift", type=float, help="usage change at the drift (-0.35)")
    demo.set_defaults(run=_demo)

    lake = lambda: load_use_cases().lakehouse()  # noqa: E731 - a factory, read when run
    lakehouse_cli.add_commands(sub, lake)
    models_cli.add_commands(sub, _context())

    listing = sub.add_parser("use-cases", help="the use cases in effect and their spec files")
    listing.set_defaults(run=_use_cases)

    init = sub.add_parser("init", help="write a first use-case spec for your own data")
    init.add_argument("name", help="use-case name (lower-case identifier)")
    init.add_argument("--kind", choices=["snapshot", "events"], required=True)
    init.add_argument("--data", type=Path, required=True, help="a sample of the data file")
    init.add_argument("--key", help="the column that identifies a row (default: guessed)")
    init.add_argument("--target", help="snapshot: the label column (default: guessed)")
    init.add_argument("--entity", help="events: the entity id column (default: guessed)")
    init.add_argument("--timestamp", help="events: the time column (default: guessed)")
    init.add_argument("--start-date", type=date.fromisoformat, help="first landing day")
    init.add_argument("--force", action="store_true", help="overwrite an existing spec")
    init.set_defaults(run=_init)

    spec = sub.add_parser("spec", help="use-case specs")
    spec_commands = spec.add_subparsers(required=True, metavar="ACTION")
    check = spec_commands.add_parser("check", help="validate a spec (and, with --data, a file)")
    check.add_argument("spec", help="a use-case name or a spec file")
    check.add_argument("--data", type=Path, help="a data file to check against the spec")
    check.set_defaults(run=_check)

    land = sub.add_parser("land", help="validate a data file and put it into the landing folder")
    land.add_argument("name", help="use-case name")
    land.add_argument("file", type=Path)
    land.add_argument("--feed", help="which feed (default: the use case's only feed)")
    land.add_argument("--date", type=date.fromisoformat, help="snapshot: the delivery day")
    land.set_defaults(run=_land)

    run = sub.add_parser("run", help="run one of a use case's Dagster jobs")
    run.add_argument("name", help="use-case name")
    run.add_argument(
        "job",
        choices=[
            "ingest_and_features",
            "daily_pipeline",
            "weekly_retrain",
            "promotion_gate",
            "training_set",
        ],
    )
    run.add_argument("--date", type=date.fromisoformat, help="one daily partition")
    run.add_argument("--from", dest="first", type=date.fromisoformat, help="first partition")
    run.add_argument("--to", dest="last", type=date.fromisoformat, help="last partition")
    run.set_defaults(run=_run)

    doctor = sub.add_parser(
        "doctor", help="find what killed runs left behind (dead runs, orphan versions, rows)"
    )
    doctor.add_argument(
        "--repair", action="store_true", help="mark dead runs failed, tag orphan versions"
    )
    doctor.set_defaults(run=_doctor)

    _serve_parser(sub)
    return parser


def _serve_parser(sub: argparse._SubParsersAction) -> None:
    from orchestration.serving.settings import ServiceSettings

    d = ServiceSettings()
    serve = sub.add_parser(
        "serve",
        help="the scoring service for apps (read-only HTTP; docs/serving.md)",
        description="Latest batch scores and on-demand scores with exact reasons, audited.",
    )
    serve.add_argument("--host", default=d.host, help=f"listen address (default {d.host})")
    serve.add_argument("--port", type=int, default=d.port, help=f"default {d.port}")
    serve.add_argument("--workers", type=int, default=d.workers, help="worker processes")
    serve.add_argument(
        "--max-body-bytes", type=int, default=d.max_body_bytes, help="larger bodies get 413"
    )
    serve.add_argument(
        "--timeout", type=float, default=d.timeout_s, help="seconds per request before 504"
    )
    serve.add_argument(
        "--poll", type=float, default=d.poll_s, help="seconds between model alias checks"
    )
    serve.add_argument(
        "--canary-share",
        action="append",
        default=[],
        metavar="SHARE|USE_CASE=SHARE",
        help=f"share of entities the canary alias serves (default {d.canary_share})",
    )
    serve.add_argument("--max-batch", type=int, default=d.max_batch, help="entities per request")
    serve.add_argument(
        "--flush-interval",
        type=float,
        default=d.flush_interval_s,
        help="seconds between audit commits to Delta",
    )
    serve.add_argument("--spool-dir", help="audit spool (default $SCOREHOUSE_HOME/serving/spool)")
    serve.set_defaults(run=_serve)


def _demo(args: argparse.Namespace) -> int:
    # The world settings are read when the Dagster definitions load: set them first.
    for flag, env in [
        ("customers", "SCOREHOUSE_SIM_CUSTOMERS"),
        ("days", "SCOREHOUSE_SIM_DAYS"),
        ("seed", "SCOREHOUSE_SIM_SEED"),
        ("start_date", "SCOREHOUSE_START_DATE"),
        ("drift_day", "SCOREHOUSE_SIM_DRIFT_DAY"),
        ("concept_day", "SCOREHOUSE_SIM_CONCEPT_DAY"),
        ("usage_shift", "SCOREHOUSE_SIM_USAGE_SHIFT"),
        ("loans", "SCOREHOUSE_SIM_LOANS"),
        ("lending_days", "SCOREHOUSE_SIM_LENDING_DAYS"),
        ("lending_start_date", "SCOREHOUSE_SIM_LENDING_START_DATE"),
        ("shock_day", "SCOREHOUSE_SIM_SHOCK_DAY"),
    ]:
        if getattr(args, flag) is not None:
            os.environ[env] = str(getattr(args, flag))
    from orchestration.demo.worlds import set_defaults

    use_cases = DEMO_USE_CASES if args.use_case == "all" else (args.use_case,)
    set_defaults(use_cases, shifts=not args.no_drift)
    from orchestration.demo import run_demo

    run_demo(use_cases)
    print()
    return lakehouse_cli.tables(load_use_cases().lakehouse())


def _init(args: argparse.Namespace) -> int:
    from models.usecase.load import load_spec
    from models.usecase.registry import home_dir
    from models.usecase.scaffold import infer_columns, read_sample, render, scaffold

    frame = read_sample(args.data)
    columns = infer_columns(
        frame,
        args.kind,
        key=args.key,
        target=args.target,
        timestamp=args.timestamp,
        entity=args.entity,
    )
    start = args.start_date or _first_day(frame, columns.timestamp) or date.today()
    spec = scaffold(args.name, args.kind, columns, start_date=start)
    path = home_dir() / f"{args.name}.yaml"
    if path.exists() and not args.force:
        raise ValueError(f"{path} exists: use --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = path.read_text() if path.exists() else None
    draft = path.with_name(f".{path.name}.draft")
    draft.write_text(render(spec))
    try:
        load_spec(draft)  # nothing lands in the home unless the spec is valid …
        draft.replace(path)
        load_use_cases()  # … and collides with no other use case
    except Exception:
        draft.unlink(missing_ok=True)
        if previous is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(previous)
        raise
    print(f"wrote {path}: review it, then `scorehouse spec check {args.name} --data {args.data}`")
    return 0


def _first_day(frame: object, timestamp: str | None) -> date | None:
    """An event log's first day (its partitions start there); None for a snapshot."""
    import polars as pl

    if timestamp is None or not isinstance(frame, pl.DataFrame):
        return None
    column = frame[timestamp]
    first = (column.dt.date() if column.dtype == pl.Datetime else column).min()
    return first if isinstance(first, date) else None


def _check(args: argparse.Namespace) -> int:
    from models.usecase.data import check_data
    from models.usecase.load import load_spec

    candidate = Path(args.spec)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        use_case = load_spec(candidate)
    else:
        use_case = load_use_cases()[args.spec]
    load_use_cases()  # no collision with the other use cases in effect
    print(f"{use_case.path}: use case {use_case.name!r} is valid")
    if args.data is not None:
        rows = check_data(use_case, args.data)
        print(f"{args.data}: {rows} rows match the contract and the label")
    return 0


def _land(args: argparse.Namespace) -> int:
    from lakehouse import config as lake_config
    from lakehouse.ingest.land import land_events, land_snapshot
    from orchestration.settings import first_day

    use_case = load_use_cases()[args.name]
    feeds = use_case.source.tables.feeds
    if args.feed is None and len(feeds) != 1:
        raise ValueError(f"name the feed with --feed (one of {sorted(feeds)})")
    feed = feeds[args.feed] if args.feed else next(iter(feeds.values()))
    landing = lake_config.landing_dir()
    start = first_day(use_case.source)
    if feed.timestamp_column is None:
        day = args.date or date.today()
        if day < start:
            raise ValueError(
                f"delivery day {day} is before the first daily partition {start} of source "
                f"{use_case.source.name!r}: no job could ingest it; set SCOREHOUSE_START_DATE "
                "(or the spec's source.start_date) to that day or earlier"
            )
        path = land_snapshot(landing, feed, args.file, day)
        print(f"landed {args.file} as {path} (delivery of {day})")
    else:
        paths = land_events(landing, feed, args.file, earliest=start)
        first, last = paths[0].parent.name, paths[-1].parent.name
        print(f"landed {args.file} as {len(paths)} daily files ({first} … {last})")
    return 0


def _run(args: argparse.Namespace) -> int:
    from lakehouse import config as lake_config
    from orchestration.partitions import check_days
    from orchestration.runs import partition_range, run_job

    use_case = load_use_cases()[args.name]
    tags: dict[str, str] = {}
    partitioned = args.job in ("ingest_and_features", "daily_pipeline")
    if partitioned:
        first = args.first or args.date
        last = args.last or args.date or first
        if first is None or last is None:
            raise ValueError(f"job {args.job} is daily: pass --date D or --from D --to D")
        check_days(use_case.source, first, last, lake_config.landing_dir())
        tags = partition_range(first, last)
    run_job(f"{use_case.name}_{args.job}", tags)
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from dagster import DagsterInstance

    from orchestration import doctor
    from orchestration.runs import dagster_home

    dagster_home()
    use_cases = load_use_cases()
    instance = DagsterInstance.get()
    found = doctor.examine(instance, list(use_cases.values()), use_cases.lakehouse())
    print(f"runs left unfinished by a dead process: {len(found.dead_runs)}")
    for run_id in found.dead_runs:
        print(f"  {run_id}")
    print(f"orphan model versions: {len(found.orphan_versions)}")
    for name, version, why in found.orphan_versions:
        print(f"  {name} v{version}: {why}")
    print(f"training runs left RUNNING by a dead run: {len(found.stale_training_runs)}")
    for name, run_id, why in found.stale_training_runs:
        print(f"  {name} MLflow run {run_id}: {why}")
    unrecorded = found.unrecorded
    rows = 0 if unrecorded is None else int(unrecorded["rows"].sum())
    print(f"rows of unrecorded scoring runs (never read, kept as evidence): {rows}")
    if unrecorded is not None and unrecorded.height:
        print(unrecorded)
    incomplete = found.incomplete
    print(f"recorded runs with missing rows: {0 if incomplete is None else incomplete.height}")
    if incomplete is not None and incomplete.height:
        print(incomplete)
    if args.repair and (found.dead_runs or found.orphan_versions or found.stale_training_runs):
        doctor.repair(instance, found, dict(use_cases))
        print(
            "repaired: dead runs marked failed, orphan versions tagged scorehouse.orphan, "
            "stale training runs ended KILLED"
        )
        return 0
    return (
        1
        if found.dead_runs
        or found.orphan_versions
        or found.stale_training_runs
        or (incomplete is not None and incomplete.height)
        else 0
    )


def _use_cases(args: argparse.Namespace) -> int:
    for name, use_case in sorted(load_use_cases().items()):
        print(f"{name}: {use_case.description} ({use_case.path})")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from orchestration.serving.server import serve
    from orchestration.serving.settings import ServiceSettings

    share, shares = ServiceSettings.canary_share, {}
    for value in args.canary_share:
        name, _, number = value.rpartition("=")
        if name:
            shares[name] = float(number)
        else:
            share = float(number)
    settings = ServiceSettings(
        host=args.host,
        port=args.port,
        workers=args.workers,
        max_body_bytes=args.max_body_bytes,
        timeout_s=args.timeout,
        poll_s=args.poll,
        canary_share=share,
        canary_shares=shares,
        max_batch=args.max_batch,
        flush_interval_s=args.flush_interval,
        spool_dir=args.spool_dir,
    )
    return serve(settings)


if __name__ == "__main__":
    raise SystemExit(main())
