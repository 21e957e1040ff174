"""``scorehouse``: the command line for what is not Dagster's job (one entry point).

scorehouse demo                 simulate a SaaS world and build every table (embedded defaults)
scorehouse tables | history | query | optimize | vacuum      the lakehouse (``lakehouse.cli``)
scorehouse model list|rollback | replay                      models and runs (``models.cli``)
scorehouse init NAME --kind snapshot|events [--data FILE]    scaffold a use-case spec
scorehouse spec check [NAME|FILE] [--data FILE]              validate a spec (and its data)
scorehouse use-cases            the use cases in effect and where their specs are
scorehouse serve                the scoring service for apps on loopback (docs/serving.md)

Each package owns its sub-commands; this module wires them to the project's catalog, registry
and feature store.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from lakehouse import cli as lakehouse_cli
from lakehouse.errors import LakehouseError
from models import cli as models_cli
from models.usecase import SpecError, load_use_cases


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
        return int(args.run(args) or 0)
    except (LakehouseError, SpecError, ValueError, KeyError, FileNotFoundError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"scorehouse: error: {message}", file=sys.stderr)
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

    lake = lambda: load_use_cases().lakehouse()  # noqa: E731 - a factory, read when run
    lakehouse_cli.add_commands(sub, lake)
    models_cli.add_commands(sub, _context())

    listing = sub.add_parser("use-cases", help="the use cases in effect and their spec files")
    listing.set_defaults(run=_use_cases)

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
    serve.add_argument(
        "--flush-rows", type=int, default=d.flush_rows, help="commit once this many are spooled"
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
    return lakehouse_cli.tables(load_use_cases().lakehouse())


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
        flush_rows=args.flush_rows,
        spool_dir=args.spool_dir,
    )
    return serve(settings)


if __name__ == "__main__":
    raise SystemExit(main())
