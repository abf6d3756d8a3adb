"""Steady load for the reliability suite, run as its own process on 127.0.0.1:

    python -m tests.reliability.load URL OUT_FILE --rps 50 --max-seconds 240

Open loop: one single-record ``POST /predict`` every 1/rps seconds whatever the answers do, so
an outage shows as failed requests rather than as a client that slowed down. Bounded in count
(rps x max-seconds) and in time; SIGTERM stops it early after the requests in flight end.

A failed request is retried once, like a careful client, after ``Retry-After`` or one second.
Each request ends as one JSON line in OUT_FILE, written as it completes so the test can read
the outcome of a fault while the load goes on: send and answer times (``time.monotonic``, which
is the same clock in every process on Linux), status (0: no HTTP answer), the served version
and the request id of a success, and the same for the retry. The requests and their schedule
are :mod:`mlops_lab.front_end.loadgen`'s, shared by every load client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from typing import Any, TextIO

import aiohttp

from mlops_lab.front_end import loadgen
from mlops_lab.front_end.loadgen import Answer
from pipelines import data
from serving.schema import records_from_frame
from tests.models import TYPES

_DEFAULT_RETRY_S = 1.0


def _outcome(answer: Answer) -> dict[str, Any]:
    """One attempt as the JSON line holds it; ``error`` is the exception's type when there was
    no HTTP answer (the tests tell an answer that may have been logged by it)."""
    outcome: dict[str, Any] = {
        "sent": answer.sent,
        "answered": answer.answered,
        "status": answer.status,
        "retry_after": answer.retry_after,
    }
    if answer.ok:
        body = answer.json()
        outcome.update(rid=body["request_id"], version=body["model_version"])
    else:
        outcome["error"] = answer.exception or answer.text[:200]
    return outcome


async def _request(
    session: aiohttp.ClientSession, index: int, record: dict[str, Any], out: TextIO
) -> None:
    first = await loadgen.predict(session, record)
    line: dict[str, Any] = {"i": index, **_outcome(first)}
    if not first.ok:
        await asyncio.sleep(float(first.retry_after or _DEFAULT_RETRY_S))
        line["retry"] = _outcome(await loadgen.predict(session, record))
    out.write(json.dumps(line) + "\n")


async def run(url: str, out: TextIO, rps: float, max_seconds: float) -> None:
    records = records_from_frame(data.generate(500, seed=91), TYPES.names)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with loadgen.client(url, 200) as session:

        async def send(index: int, _due: float) -> None:
            await _request(session, index, records[index % len(records)], out)

        await loadgen.open_loop(send, rps, round(rps * max_seconds), stop=stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("url")
    parser.add_argument("out")
    parser.add_argument("--rps", type=float, default=50.0)
    parser.add_argument("--max-seconds", type=float, default=240.0)
    args = parser.parse_args()
    with open(args.out, "w", buffering=1) as out:  # line-buffered: readable while running
        asyncio.run(run(args.url, out, args.rps, args.max_seconds))


if __name__ == "__main__":
    main()
