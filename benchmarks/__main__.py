"""`make bench` / `mlops-lab bench`: every benchmark in one run, a table, a JSON file and a plot.

Each section starts what it needs on free ports in a temp dir and stops it afterwards; a section
that fails is reported as not measured and the others still run. Benchmarks print figures, they
never assert them. Sections, in order, with their wall time in one full run on a quiet 2-core
machine (2026-11-30, 11 min in all):

    platform   up cold and after down, RSS by service          ~1 min
    train      mlops-lab train end to end, the flow alone       ~0.5 min (--quick: 5,000 rows)
    serving    ours vs in process vs mlflow models serve        ~3 min
    drift      Evidently vs scipy on 10,000 x 10                ~10 s
    rollback   model rollback -> every answer old version       ~0.5 min
    rollout    p99 with a shadow candidate vs the champion alone ~2 min
    loop       drift -> alert -> retrained champion serving     ~6 min  (--quick: test settings
                                                                         only, ~1 min)

    python -m benchmarks [--only serving,drift] [--skip loop] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback
from pathlib import Path

from rich.console import Console

from benchmarks.plot import latency_plot
from benchmarks.results import Report

# Section -> its module, imported only when it runs (MLflow and Prefect take seconds to import).
# Each module has ``measure(report, quick)``.
SECTIONS: dict[str, str] = {
    "platform": "benchmarks.bench_platform",
    "train": "benchmarks.bench_train",
    "serving": "benchmarks.bench_serving",
    "drift": "benchmarks.bench_drift",
    "rollback": "benchmarks.bench_rollback",
    "rollout": "benchmarks.bench_rollout",
    "loop": "benchmarks.bench_loop",
}
DEFAULT_OUT = Path("benchmarks") / "results"


def selected(only: str | None, skip: str | None) -> list[str]:
    """The sections to run, in their usual order; an unknown name is an error that lists them."""
    wanted = _names(only) or list(SECTIONS)
    unwanted = _names(skip)
    return [name for name in SECTIONS if name in wanted and name not in unwanted]


def _names(value: str | None) -> list[str]:
    names = [n.strip() for n in (value or "").split(",") if n.strip()]
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        raise SystemExit(
            f"unknown benchmark section(s): {', '.join(unknown)}. Known: {', '.join(SECTIONS)}."
        )
    return names


def run(sections: list[str], quick: bool, out: Path, console: Console) -> Report:
    report = Report(quick=quick)
    for name in sections:
        console.print(f"[bold]== {name}[/] ({time.strftime('%H:%M:%S')})")
        started = time.perf_counter()
        try:
            importlib.import_module(SECTIONS[name]).measure(report, quick)
        except Exception as error:  # one broken section must not cost the others' figures
            report.skipped[name] = f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"
            console.print(traceback.format_exc(), markup=False, highlight=False)
        report.durations_s[name] = time.perf_counter() - started
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    console.print(report.table())
    json_path = report.write(out / f"bench-{stamp}.json")
    plot_path = latency_plot(report, out / f"bench-{stamp}-latency.png")
    total = sum(report.durations_s.values())
    console.print(f"Ran {', '.join(sections)} in {total / 60:.1f} min.")
    console.print(f"JSON: {json_path}")
    if plot_path is not None:
        console.print(f"Plot: {plot_path}")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--only", help=f"Comma-separated sections: {', '.join(SECTIONS)}.")
    parser.add_argument("--skip", help="Comma-separated sections to leave out.")
    parser.add_argument("--quick", action="store_true", help="Shorter measurements, fewer runs.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="Where JSON and PNG go.")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # Piped to a file or CI log, Rich would wrap the table at 80 columns.
    console = Console(width=None if sys.stdout.isatty() else 170)
    run(selected(args.only, args.skip), args.quick, args.out, console)


if __name__ == "__main__":
    main()
