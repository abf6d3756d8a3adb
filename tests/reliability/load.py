"""Steady load for the reliability suite, run as its own process on 127.0.0.1:

    python -m tests.reliability.load URL OUT_FILE --rps 50 --max-seconds 240

Open loop: one single-record ``POST /predict`` every 1/rps seconds whatever the answers do, so
an outage shows as failed requests rather than as a client that slowed down. Bounded in count
(rps x max-seconds) and in time; SIGTERM stops it early after the requests in flight end.

A failed request is retried once, like a careful client, after ``Retry-After`` or one second.
Each request ends as one JSON line in OUT_FILE, written as it completes so the test can read
the outcome of a fault while the load goes on: send and answer times (``time.monotonic``, which
is the same clock in every process on Linux), status (0: no HTTP answer), the served version
and the request id of a success, and the same for the retry.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import time
from typing import Any, TextIO

import aiohttp

from pipelines import data
from serving.schema import records_from_frame
from tests.models import TYPES

_TIMEOUT = aiohttp.ClientTimeout(total=10.0, connect=5.0)
_DEFAULT_RETRY_S = 1.0


async def _attempt(session: aiohttp.ClientSession, record: dict[str, Any]) -> dict[str, Any]:
    sent = time.monotonic()
    outcome: dict[str, Any] = {"sent": sent}
    try:
        async with session.post("/predict", json={"records": [record]}) as response:
            body = await response.read()
            outcome["status"] = response.status
            outcome["retry_after"] = response.headers.get("Retry-After")
    except (TimeoutError, aiohttp.ClientError) as error:
        outcome.update(status=0, error=type(error).__name__)
    else:
        if outcome["status"] == 200:
            answer = json.loads(body)
            outcome.update(rid=answer["request_id"], version=answer["model_version"])
        else:
            outcome["error"] = body[:200].decode(errors="replace")
    outcome["answered"] = time.monotonic()
    return outcome


async def _request(
    session: aiohttp.ClientSession, index: int, record: dict[str, Any], out: TextIO
) -> None:
    first = await _attempt(session, record)
    line: dict[str, Any] = {"i": index, **first}
    if first["status"] != 200:
        await asyncio.sleep(float(first.get("retry_after") or _DEFAULT_RETRY_S))
        line["retry"] = await _attempt(session, record)
    out.write(json.dumps(line) + "\n")


async def run(url: str, out: TextIO, rps: float, max_seconds: float) -> None:
    records = records_from_frame(data.generate(500, seed=91), TYPES.names)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    tasks: set[asyncio.Task] = set()
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(url, connector=connector, timeout=_TIMEOUT) as session:
        start = loop.time()
        for index in range(round(rps * max_seconds)):
            delay = start + index / rps - loop.time()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
            if stop.is_set():
                break
            task = asyncio.create_task(_request(session, index, records[index % len(records)], out))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("out")
    parser.add_argument("--rps", type=float, default=50.0)
    parser.add_argument("--max-seconds", type=float, default=240.0)
    args = parser.parse_args()
    with open(args.out, "w", buffering=1) as out:  # line-buffered: readable while running
        asyncio.run(run(args.url, out, args.rps, args.max_seconds))


if __name__ == "__main__":
    main()
