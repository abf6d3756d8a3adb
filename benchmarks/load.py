"""The load generator of the serving benchmark, run as its own process on 127.0.0.1.

It runs in a separate process so that its CPU time shows as the client's, not the server's,
and prints one JSON object on stdout: what was sent, answered, failed, and the latencies.

Two targets, one record per request: ``ours`` (``POST /predict`` with ``{"records": [r]}``) and
``mlflow`` (``mlflow models serve``: ``POST /invocations`` with ``{"dataframe_records": [r]}``).
Two shapes: ``--rate`` sends on a fixed schedule whatever the answers do (open loop), and a
request's latency counts from when it was due, so a server that falls behind shows its queue;
``--concurrency`` keeps N requests in flight (closed loop), which finds the maximum throughput.
Bounded either way: at most ``rate × seconds`` requests, 10 s per request, and a hard stop.

    python -m benchmarks.load --url http://127.0.0.1:3000 --target ours --rate 100 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import aiohttp
import numpy as np

from benchmarks.records import complete_records

_TIMEOUT = aiohttp.ClientTimeout(total=10.0, connect=5.0)
PATHS = {"ours": ("/predict", "records"), "mlflow": ("/invocations", "dataframe_records")}


class Tally:
    def __init__(self) -> None:
        self.latencies_ms: list[float] = []
        self.ok = 0
        self.failed = 0
        self.first_error: str | None = None

    def fail(self, detail: str) -> None:
        self.failed += 1
        self.first_error = self.first_error or detail


async def _one(session, path, key, record, due: float, tally: Tally) -> None:
    try:
        async with session.post(path, json={key: [record]}) as response:
            body = await response.read()
            if response.status != 200:
                tally.fail(f"HTTP {response.status}: {body[:200].decode(errors='replace')}")
                return
    except (TimeoutError, aiohttp.ClientError) as error:
        tally.fail(f"{type(error).__name__}: {error}")
        return
    tally.ok += 1
    tally.latencies_ms.append((time.perf_counter() - due) * 1000)


async def open_loop(url, target, records, rate: float, seconds: float, tally: Tally) -> None:
    path, key = PATHS[target]
    connector = aiohttp.TCPConnector(limit=512)
    async with aiohttp.ClientSession(url, connector=connector, timeout=_TIMEOUT) as session:
        start = time.perf_counter()
        tasks = []
        for index in range(max(1, round(rate * seconds))):
            due = start + index / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            record = records[index % len(records)]
            tasks.append(asyncio.create_task(_one(session, path, key, record, due, tally)))
        await asyncio.gather(*tasks)


async def closed_loop(url, target, records, concurrency: int, seconds: float, tally) -> None:
    path, key = PATHS[target]
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(url, connector=connector, timeout=_TIMEOUT) as session:

        async def worker(index: int) -> None:
            while time.perf_counter() < deadline:
                due = time.perf_counter()
                await _one(session, path, key, records[index % len(records)], due, tally)
                index += concurrency

        await asyncio.gather(*(worker(i) for i in range(concurrency)))


def summary(tally: Tally, elapsed_s: float) -> dict[str, Any]:
    latencies = np.array(tally.latencies_ms) if tally.latencies_ms else None
    p50, p99 = np.percentile(latencies, [50, 99]) if latencies is not None else (None, None)
    return {
        "ok": tally.ok,
        "failed": tally.failed,
        "first_error": tally.first_error,
        "elapsed_s": elapsed_s,
        "throughput": tally.ok / elapsed_s if elapsed_s > 0 else 0.0,
        "p50_ms": None if p50 is None else float(p50),
        "p99_ms": None if p99 is None else float(p99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    tally = Tally()
    if args.rate:
        run = open_loop(args.url, args.target, records, args.rate, args.seconds, tally)
    else:
        run = closed_loop(args.url, args.target, records, args.concurrency, args.seconds, tally)
    started = time.perf_counter()
    asyncio.run(asyncio.wait_for(run, timeout=args.seconds + 30))
    print(json.dumps(summary(tally, time.perf_counter() - started)))


if __name__ == "__main__":
    main()
