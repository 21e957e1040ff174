"""Throughput of the lending simulator: a whole world written to a landing folder.

Three tasks, interleaved, each repeated and reported as the median: the full ``simulate`` (every
day's five feed files and the truth), the state-only pass (``World.step(emit=False)``: the
same draws and servicing, no frames, no files) as the baseline inside the same process, and
the SaaS simulator on the same number of entity-days for comparison. CPU time is reported
next to wall time: on a shared 2-core machine it is the steadier figure.

    python benchmarks/bench_lending.py                # 5,000 loans x 1,095 days, 3 repeats
    python benchmarks/bench_lending.py --small        # 500 loans x 120 days, 1 repeat (smoke)
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.measure import PeakRss  # noqa: E402
from lakehouse.sources import lending, saas  # noqa: E402

DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "lending.md"


@dataclass(frozen=True)
class Timing:
    seconds: float
    cpu_seconds: float
    peak_mib: float


def _measure(task: Callable[[], object]) -> Timing:
    with PeakRss() as rss:
        wall, cpu = time.perf_counter(), time.process_time()
        task()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return Timing(wall, cpu, (rss.peak - rss.start) / 2**20)


def _median(timings: list[Timing]) -> Timing:
    return Timing(
        statistics.median(t.seconds for t in timings),
        statistics.median(t.cpu_seconds for t in timings),
        max(t.peak_mib for t in timings),
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Timing]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loans", type=int, default=5000)
    parser.add_argument("--days", type=int, default=1095)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    if args.small:
        args.loans, args.days, args.repeats = 500, 120, 1
    config = lending.LendingConfig(loans=args.loans, days=args.days)
    # The SaaS world for comparison: as many customers as loans, over one year.
    saas_days = max(args.days // 3, 1)
    saas_config = saas.SimulationConfig(customers=args.loans, days=saas_days)
    work = Path(tempfile.mkdtemp(prefix="bench-lending-"))

    def full() -> None:
        lending.simulate(config, work / "lending")

    def state_only() -> None:
        world = lending.World(config)
        for _ in range(config.days):
            world.step(emit=False)

    def saas_full() -> None:
        saas.simulate(saas_config, work / "saas")

    tasks = {"simulate (files)": full, "state only": state_only, "saas simulate": saas_full}
    timings: dict[str, list[Timing]] = {name: [] for name in tasks}
    try:
        for _ in range(args.repeats):
            for name, task in tasks.items():
                shutil.rmtree(work, ignore_errors=True)
                timings[name].append(_measure(task))
        full()
        size_mib = sum(p.stat().st_size for p in (work / "lending").rglob("*") if p.is_file())
        size_mib /= 2**20
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results = {name: _median(values) for name, values in timings.items()}
    entity_days = {name: args.loans * args.days for name in tasks}
    entity_days["saas simulate"] = args.loans * saas_days
    lines = [
        f"# Lending simulator: {args.loans:,} loans x {args.days:,} days "
        f"(median of {args.repeats}; SaaS: {args.loans:,} customers x {saas_days} days)",
        "",
        "| task | wall s | CPU s | entity-days / CPU s | peak MiB |",
        "| --- | ---: | ---: | ---: | ---: |",
        *(
            f"| {name} | {t.seconds:.1f} | {t.cpu_seconds:.1f} | "
            f"{entity_days[name] / t.cpu_seconds:,.0f} | {t.peak_mib:.0f} |"
            for name, t in results.items()
        ),
        "",
        f"Files of one lending world: {size_mib:.0f} MiB. State only / full (CPU): "
        f"{results['state only'].cpu_seconds / results['simulate (files)'].cpu_seconds:.2f}",
    ]
    report = "\n".join(lines) + "\n"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(report)
    return results


if __name__ == "__main__":
    main()
