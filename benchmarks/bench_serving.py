"""Serving latency and throughput over HTTP, next to the limit: the same model in process.

Starts MLflow and the serving API on free ports in a temp dir (as `make up` would), registers a
model trained on the default generated data, and prints:

- in process: ``predict_proba`` on one prepared row, and the whole per-request path the service
  runs (validate, build the frame, prepare, predict), one record at a time: the limit;
- in process, by batch size: what one call costs for 1..256 records (why batching pays);
- over HTTP: single-record requests in a closed loop at several concurrencies (1 in flight is
  the unloaded latency; the best rate is the maximum throughput), with BentoML's own server-side
  latency and the server's CPU time per request beside the client's view.

The load generator runs on the same cores as the server, so the HTTP figures are pessimistic;
so are all figures when other work shares the machine.

    .venv/bin/python -m benchmarks.bench_serving [--seconds 10] [--concurrency 1,8,32,64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Callable

import httpx
import numpy as np
import pandas as pd
import psutil
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table

from mlops_lab.core import contract
from mlops_lab.core.contract import prepare_features
from mlops_lab.runtime.local import LocalRuntime
from pipelines import data
from serving import model as model_loading
from serving.loadgen import LoadStats, closed_loop
from serving.schema import records_from_frame
from tests.models import TYPES, register_model, set_champion
from tests.serving.conftest import wait_until_serving
from tests.support import running_platform

console = Console()


def _timed(call: Callable[[], object], seconds: float) -> np.ndarray:
    """Latencies (ms) of back-to-back calls for about ``seconds``."""
    latencies = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        call()
        latencies.append((time.perf_counter() - started) * 1000)
    return np.array(latencies)


def _row(label: str, latencies_ms: np.ndarray, per_second: float) -> tuple[str, ...]:
    p50, p99 = np.percentile(latencies_ms, [50, 99])
    return label, f"{p50:.2f}", f"{p99:.2f}", f"{per_second:,.0f}", f"{len(latencies_ms):,}"


def in_process(loaded: model_loading.LoadedModel, records: list[dict], seconds: float) -> Table:
    one = records[:1]
    frame = prepare_features(pd.DataFrame.from_records(one, columns=TYPES.names), TYPES)
    table = Table(
        "In process, one record per call", "p50 ms", "p99 ms", "calls/s", "calls", title="Limit"
    )
    for label, call in (
        ("predict_proba(prepared row)", lambda: loaded.estimator.predict_proba(frame)),
        ("validate + prepare + predict", lambda: loaded.score([loaded.schema.validate(one)])),
    ):
        latencies = _timed(call, seconds)
        table.add_row(*_row(label, latencies, 1000 / latencies.mean()))
    return table


def batch_cost(loaded: model_loading.LoadedModel, records: list[dict], seconds: float) -> Table:
    table = Table("Records per call", "p50 ms", "records/s", title="In process, by batch size")
    for size in (1, 8, 32, 128, 256):
        batch = [records[:size]]
        latencies = _timed(lambda b=batch: loaded.score(b), seconds / 3)
        p50 = float(np.percentile(latencies, 50))
        table.add_row(str(size), f"{p50:.2f}", f"{size * 1000 / latencies.mean():,.0f}")
    return table


def _server_totals(url: str, pid: int) -> tuple[float, float, float]:
    """BentoML's own /predict latency sum and count, and the serving process tree's CPU time."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    seconds = count = 0.0
    for family in text_string_to_metric_families(text):
        if family.name != "bentoml_service_request_duration_seconds":
            continue
        for sample in family.samples:
            if sample.labels.get("endpoint") == "/predict":
                if sample.name.endswith("_sum"):
                    seconds += sample.value
                elif sample.name.endswith("_count"):
                    count += sample.value
    root = psutil.Process(pid)
    cpu = sum(sum(p.cpu_times()[:2]) for p in [root, *root.children(recursive=True)])
    return seconds, count, cpu


def over_http(url: str, pid: int, records: list[dict], seconds: float, levels: list[int]) -> Table:
    table = Table(
        "In flight",
        "p50 ms",
        "p99 ms",
        "req/s",
        "requests",
        "errors",
        "server ms",
        "server CPU ms/req",
        title="Over HTTP: one record per request, closed loop",
    )
    for concurrency in levels:
        before = _server_totals(url, pid)
        stats = LoadStats()
        asyncio.run(closed_loop(url, records, concurrency, seconds, stats))
        after = _server_totals(url, pid)
        answered = max(after[1] - before[1], 1)
        table.add_row(
            *_row(str(concurrency), np.array(stats.latencies_ms), stats.rate),
            str(stats.failed),
            f"{(after[0] - before[0]) / answered * 1000:.1f}",
            f"{(after[2] - before[2]) / answered * 1000:.2f}",
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="Per measurement.")
    parser.add_argument("--concurrency", default="1,8,32,64", help="Closed-loop levels.")
    args = parser.parse_args()
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    levels = [int(level) for level in args.concurrency.split(",")]

    records = records_from_frame(data.generate(5_000, seed=7), TYPES.names)
    console.print("Starting MLflow and serving on free ports, training a model ...")
    with running_platform(["mlflow", "serving"], alias_poll_interval_s=1.0) as settings:
        version = register_model(settings, seed=42, rows=settings.default_rows, label="bench")
        set_champion(settings, version.version)
        url = settings.url(settings.serving_port)
        wait_until_serving(settings, version.version)
        loaded = model_loading.load(contract.client_for(settings), settings, version)
        console.print(in_process(loaded, records, args.seconds))
        console.print(batch_cost(loaded, records, args.seconds))
        pid = LocalRuntime(settings).supervisor.process_info()["serving"]["pid"]
        console.print(over_http(url, pid, records, args.seconds, levels))
    console.print(
        "Client-side figures include the load generator running on the same cores as the "
        "server; 'server ms' is BentoML's own mean /predict latency."
    )


if __name__ == "__main__":
    main()
