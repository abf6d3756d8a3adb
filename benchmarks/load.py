"""The load generator of the serving benchmark, run as its own process on 127.0.0.1.

It runs in a separate process so that its CPU time shows as the client's, not the server's,
and prints one JSON object on stdout: what was sent, answered, failed, and the latencies.

Two targets, one record per request: ``ours`` (``POST /predict`` with ``{"records": [r]}``) and
``mlflow`` (``mlflow models serve``: ``POST /invocations`` with ``{"dataframe_records": [r]}``).
Two shapes: ``--rate`` sends on a fixed schedule whatever the answers do (open loop), and a
request's latency counts from when it was due, so a server that falls behind shows its queue;
``--concurrency`` keeps N requests in flight (closed loop), which finds the maximum throughput.
Bounded either way: at most ``rate × seconds`` requests, 10 s per request, and a hard stop.
The requests and the open loop's schedule are :mod:`mlops_lab.front_end.loadgen`'s, shared by
every load client; the closed loop is the benchmark's own.

    python -m benchmarks.load --url http://127.0.0.1:3000 --target ours --rate 100 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from benchmarks.records import complete_records
from mlops_lab.front_end import loadgen
from mlops_lab.front_end.loadgen import LoadStats

PATHS = {"ours": ("/predict", "records"), "mlflow": ("/invocations", "dataframe_records")}


async def open_loop(url, target, records, rate: float, seconds: float, stats: LoadStats) -> None:
    path, key = PATHS[target]
    async with loadgen.client(url, 512) as session:

        async def send(index: int, due: float) -> None:
            answer = await loadgen.predict(session, records[index % len(records)], path, key)
            stats.record(answer, due=due)

        await loadgen.open_loop(send, rate, max(1, round(rate * seconds)))


async def closed_loop(
    url, target, records, concurrency: int, seconds: float, stats: LoadStats
) -> None:
    path, key = PATHS[target]
    deadline = time.monotonic() + seconds
    async with loadgen.client(url, concurrency) as session:

        async def worker(index: int) -> None:
            while time.monotonic() < deadline:
                answer = await loadgen.predict(session, records[index % len(records)], path, key)
                stats.record(answer)
                index += concurrency

        await asyncio.gather(*(worker(i) for i in range(concurrency)))


def summary(stats: LoadStats, elapsed_s: float) -> dict[str, Any]:
    return {
        "ok": stats.ok,
        "failed": stats.failed,
        "first_error": stats.first_error,
        "elapsed_s": elapsed_s,
        "throughput": stats.ok / elapsed_s if elapsed_s > 0 else 0.0,
        "p50_ms": stats.percentile(50),
        "p99_ms": stats.percentile(99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", required=True)
    parser.add_argument("--target", choices=sorted(PATHS), required=True)
    parser.add_argument("--seconds", type=float, required=True)
    shape = parser.add_mutually_exclusive_group(required=True)
    shape.add_argument("--rate", type=float, help="Open loop: requests per second.")
    shape.add_argument("--concurrency", type=int, help="Closed loop: requests in flight.")
    args = parser.parse_args()
    if not args.url.startswith(("http://127.0.0.1:", "http://localhost:")):
        raise SystemExit(f"the benchmark only loads servers on 127.0.0.1, not {args.url}")
    records = complete_records(2_000)
    stats = LoadStats()
    if args.rate:
        run = open_loop(args.url, args.target, records, args.rate, args.seconds, stats)
    else:
        run = closed_loop(args.url, args.target, records, args.concurrency, args.seconds, stats)
    started = time.perf_counter()
    asyncio.run(asyncio.wait_for(run, timeout=args.seconds + 30))
    print(json.dumps(summary(stats, time.perf_counter() - started)))


if __name__ == "__main__":
    main()
