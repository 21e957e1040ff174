"""``scorehouse``: the command line for what is not Dagster's job (one entry point).

scorehouse demo                 simulate a SaaS world and build every table (embedded defaults)
scorehouse tables | history | query | optimize | vacuum      the lakehouse (``lakehouse.cli``)
scorehouse model list|rollback | replay                      models and runs (``models.cli``)
scorehouse init NAME --kind snapshot|events [--data FILE]    scaffold a use-case spec
scorehouse spec check [NAME|FILE] [--data FILE]              validate a spec (and its data)
scorehouse use-cases            the use cases in effect and where their specs are
scorehouse serve                the Feast feature server on loopback (online features)

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

    serve = sub.add_parser("serve", help="Feast feature server (HTTP) on loopback")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=6566)
    serve.set_defaults(run=_serve)
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
    return lakehouse_cli.tables(load_use_cases().lakehouse())


def _use_cases(args: argparse.Namespace) -> int:
    for name, use_case in sorted(load_use_cases().items()):
        print(f"{name}: {use_case.description} ({use_case.path})")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from feature_repo.config import feature_store

    print(f"Feast feature server on http://{args.host}:{args.port} (POST /get-online-features)")
    feature_store().serve(host=args.host, port=args.port, type_="http", no_access_log=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
