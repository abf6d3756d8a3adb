"""HTTP load against the serving API, measured: `mlops-lab traffic` and the serving benchmark.

Two shapes of load. Open loop (:func:`open_loop`) sends at a fixed rate whatever the answers do,
like real users; it is what the traffic generator uses. Closed loop (:func:`closed_loop`) keeps N
requests in flight and sends the next as soon as one returns, which finds the maximum throughput.

The client is aiohttp: on a two-core machine the load generator shares the CPU with the server,
and httpx's async client spends about ten times more CPU per request at 64 connections, which
would cap the measured throughput at the client's limit instead of the server's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx
import numpy as np

from platform_core.errors import PlatformError

_TIMEOUT = aiohttp.ClientTimeout(total=10.0, connect=5.0)
_FEEDBACK_EVERY_S = 1.0


@dataclass
class LoadStats:
    sent: int = 0
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    labels_sent: int = 0
    labels_failed: int = 0
    first_error: str | None = None
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    @property
    def elapsed_s(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def rate(self) -> float:
        """Answered requests per second so far."""
        elapsed = self.elapsed_s
        return (self.ok + self.failed) / elapsed if elapsed > 0 else 0.0

    def percentile(self, q: float) -> float | None:
        latencies = list(self.latencies_ms)
        return float(np.percentile(latencies, q)) if latencies else None

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if self.first_error is None:
            self.first_error = f"{kind}: {detail}"


def not_ready_reason(base_url: str) -> str | None:
    """Why serving is not ready (None once it is), from its /readyz answer; a PlatformError with
    what to do next when it does not answer at all."""
    try:
        response = httpx.get(f"{base_url}/readyz", timeout=5.0)
    except httpx.HTTPError as error:
        raise PlatformError(
            f"Serving is not reachable at {base_url} ({type(error).__name__}).",
            hint="Start the platform with `make up`; `make status` shows what is down.",
        ) from error
    if response.status_code == 200:
        return None
    return response.text.strip().removeprefix("Not ready: ") or f"HTTP {response.status_code}"


async def _predict(
    session: aiohttp.ClientSession, record: dict[str, Any], stats: LoadStats
) -> str | None:
    """One single-record request; returns its request id when it succeeded."""
    stats.sent += 1
    started = time.perf_counter()
    try:
        async with session.post("/predict", json={"records": [record]}) as response:
            body = await response.read()
            status = response.status
    except TimeoutError:
        stats.error("timeout", "no answer in time")
        return None
    except aiohttp.ClientError as error:
        stats.error("connection", str(error) or type(error).__name__)
        return None
    stats.latencies_ms.append((time.perf_counter() - started) * 1000)
    if status != 200:
        stats.error(f"HTTP {status}", body[:300].decode(errors="replace"))
        return None
    stats.ok += 1
    return json.loads(body)["request_id"]


async def _send_labels(
    session: aiohttp.ClientSession, labels: list[dict[str, Any]], stats: LoadStats
) -> None:
    if not labels:
        return
    try:
        async with session.post("/feedback", json={"labels": labels}) as response:
            response.raise_for_status()
    except (TimeoutError, aiohttp.ClientError):
        stats.labels_failed += len(labels)
    else:
        stats.labels_sent += len(labels)


async def open_loop(
    base_url: str,
    records: Sequence[dict[str, Any]],
    labels: Sequence[int],
    rps: float,
    duration_s: float,
    feedback_rate: float,
    stats: LoadStats,
    seed: int | None = None,
    max_in_flight: int = 256,
) -> None:
    """Send ``rps`` single-record requests per second for ``duration_s``, cycling ``records``.

    For a ``feedback_rate`` share of the answered requests the record's true label is sent back
    through ``POST /feedback``, batched once a second as outcomes would arrive in practice.
    """
    rng = random.Random(seed)
    pending_labels: list[dict[str, Any]] = []
    slots = asyncio.Semaphore(max_in_flight)
    connector = aiohttp.TCPConnector(limit=max_in_flight)
    async with aiohttp.ClientSession(base_url, connector=connector, timeout=_TIMEOUT) as client:

        async def one(index: int) -> None:
            try:
                request_id = await _predict(client, records[index % len(records)], stats)
                if request_id is not None and rng.random() < feedback_rate:
                    label = int(labels[index % len(labels)])
                    pending_labels.append({"request_id": request_id, "label": label})
            finally:
                slots.release()

        async def ship_labels(stop: asyncio.Event) -> None:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=_FEEDBACK_EVERY_S)
                batch = pending_labels[:]
                del pending_labels[: len(batch)]
                await _send_labels(client, batch, stats)

        stop = asyncio.Event()
        shipper = asyncio.create_task(ship_labels(stop))
        loop = asyncio.get_running_loop()
        start = loop.time()
        total = max(1, round(rps * duration_s))
        tasks = set()
        for index in range(total):
            delay = start + index / rps - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await slots.acquire()
            task = asyncio.create_task(one(index))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
        stop.set()
        await shipper
        await _send_labels(client, pending_labels, stats)
    stats.finished = time.monotonic()


async def closed_loop(
    base_url: str,
    records: Sequence[dict[str, Any]],
    concurrency: int,
    duration_s: float,
    stats: LoadStats,
) -> None:
    """Keep ``concurrency`` single-record requests in flight for ``duration_s``."""
    deadline = time.monotonic() + duration_s
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base_url, connector=connector, timeout=_TIMEOUT) as client:

        async def worker(offset: int) -> None:
            index = offset
            while time.monotonic() < deadline:
                await _predict(client, records[index % len(records)], stats)
                index += concurrency

        await asyncio.gather(*(worker(i) for i in range(concurrency)))
    stats.finished = time.monotonic()
