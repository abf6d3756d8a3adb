"""`mlops-lab train` on the default data: end to end, the flow alone, and the bare fit.

Starts MLflow, Prefect and serving on free ports in a temp dir and times ``mlops-lab train``
from the command to its last line (process start, imports, checks, the flow, serving loading
the new champion), beside the flow run alone as Prefect recorded it, and that beside the
scikit-learn fit of the same pipeline on the same data in this process (the limit).
"""

from __future__ import annotations

import asyncio
import time

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import FlowFilter, FlowFilterName
from prefect.client.schemas.sorting import FlowRunSort

from benchmarks import results
from benchmarks.results import Figure, Report
from pipelines import data, training
from tests.models import TYPES
from tests.support import run_cli, running_platform

SECTION = "train"


def _last_train_run_s(settings) -> float | None:
    async def read() -> float | None:
        async with PrefectClient(settings.prefect_api_url) as client:
            runs = await client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=["train"])),
                sort=FlowRunSort.START_TIME_DESC,
                limit=1,
            )
        if not runs or runs[0].start_time is None or runs[0].end_time is None:
            return None
        return (runs[0].end_time - runs[0].start_time).total_seconds()

    return asyncio.run(read())


def bare_fit_s(rows: int, seed: int) -> float:
    frame = data.generate(rows, "baseline", seed=seed)
    split = training.split(frame, TYPES, seed)
    started = time.perf_counter()
    training.build_pipeline(TYPES, seed).fit(split.X_train, split.y_train)
    return time.perf_counter() - started


def measure(report: Report, quick: bool = False) -> None:
    services = ["mlflow", "prefect", "serving"]
    with running_platform(services, alias_poll_interval_s=1.0) as settings:
        rows = settings.default_rows // 4 if quick else settings.default_rows
        started = time.perf_counter()
        result = run_cli(settings, "train", "--rows", str(rows), timeout=900)
        end_to_end = time.perf_counter() - started
        if result.returncode != 0:
            raise RuntimeError(f"`mlops-lab train` failed:\n{result.stderr[-3000:]}")
        flow = _last_train_run_s(settings)
        fit = bare_fit_s(rows, settings.random_seed)
    report.add(
        Figure(
            SECTION,
            f"mlops-lab train, {rows:,} rows, end to end",
            end_to_end,
            "s",
            "the flow run alone (Prefect)",
            flow,
            note="includes serving loading the new champion",
        ),
        Figure(SECTION, "the flow run alone", flow, "s", "bare scikit-learn fit", fit),
    )


if __name__ == "__main__":
    results.main(measure)
