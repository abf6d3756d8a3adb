"""Prediction requests to the serving API, one record each, measured: the one request core.

Every client that loads serving uses it: `mlops-lab traffic` (:func:`run_traffic`, with true
labels sent back as feedback), the loan front end (``python -m mlops_lab.front_end``), the serving
benchmark's load process (benchmarks/load.py) and the reliability suite's (tests/reliability/
load.py). :func:`predict` sends one request and says what it came to; :func:`open_loop` starts
requests on a fixed schedule whatever the answers do, like real users, so a server that falls
behind shows as latency and failures rather than as a client that slowed down.

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
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx
import numpy as np

from platform_core import http_calls
from platform_core.errors import PlatformError
from serving.callers import HEADER as CALLER_HEADER

TIMEOUT = aiohttp.ClientTimeout(total=10.0, connect=5.0)
# How `mlops-lab traffic` names itself to serving, which counts requests by caller.
TRAFFIC_CALLER = "mlops-lab-traffic"
_FEEDBACK_EVERY_S = 1.0


def client(base_url: str, connections: int) -> aiohttp.ClientSession:
    """A session for ``base_url`` with at most ``connections`` open, every request bounded by
    :data:`TIMEOUT`. Create it inside the event loop (``async with client(...) as session``)."""
    connector = aiohttp.TCPConnector(limit=connections)
    return aiohttp.ClientSession(base_url, connector=connector, timeout=TIMEOUT)


@dataclass(frozen=True)
class Answer:
    """What one request came to. Times are ``time.monotonic()``, the event loop's clock, so they
    compare with :func:`open_loop`'s due times and across processes on one machine."""

    sent: float
    answered: float
    kind: str  # "ok", "HTTP <status>", "timeout" or "connection": what failures are counted by
    status: int = 0  # 0: no HTTP answer
    text: str = ""  # the body of an HTTP answer, else the exception's message
    exception: str | None = None  # no HTTP answer: the exception's type, e.g. "ClientOSError"
    retry_after: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200

    def json(self) -> Any:
        return json.loads(self.text)

    @property
    def detail(self) -> str:
        """Why it failed, for a person: serving's ``error`` message, the body or the exception."""
        if self.exception:
            return f"{self.exception}: {self.text}" if self.text else self.exception
        with contextlib.suppress(ValueError):
            body = self.json()
            if isinstance(body, dict) and body.get("error"):
                return str(body["error"])[:300]
        return self.text[:300]


async def predict(
    session: aiohttp.ClientSession,
    record: dict[str, Any],
    path: str = "/predict",
    key: str = "records",
    applicant_key: str | None = None,
    caller: str | None = None,
) -> Answer:
    """Send ``{key: [record]}`` to ``path`` and wait for the answer; a failure is an answer too,
    never an exception. ``path`` and ``key`` let the benchmark load `mlflow models serve`;
    ``applicant_key`` keeps one applicant on one version during a canary rollout; ``caller``
    names the client to serving (its ``X-Caller`` header)."""
    body: dict[str, Any] = {key: [record]}
    if applicant_key is not None:
        body["applicant_key"] = applicant_key
    headers = {CALLER_HEADER: caller} if caller is not None else None
    sent = time.monotonic()
    try:
        async with session.post(path, json=body, headers=headers) as response:
            text = (await response.read()).decode(errors="replace")
            status, retry_after = response.status, response.headers.get("Retry-After")
    except (TimeoutError, aiohttp.ClientError) as error:
        kind = "timeout" if isinstance(error, TimeoutError) else "connection"
        return Answer(sent, time.monotonic(), kind, text=str(error), exception=type(error).__name__)
    kind = "ok" if status == 200 else f"HTTP {status}"
    return Answer(sent, time.monotonic(), kind, status, text, retry_after=retry_after)


async def post_labels(
    session: aiohttp.ClientSession, labels: list[dict[str, Any]], caller: str | None = None
) -> str | None:
    """Send true labels (``{"request_id", "label"}``) to ``POST /feedback``: None once accepted,
    else why not."""
    headers = {CALLER_HEADER: caller} if caller is not None else None
    try:
        async with session.post("/feedback", json={"labels": labels}, headers=headers) as response:
            if response.status == 200:
                return None
            return f"HTTP {response.status}: {(await response.text())[:300]}"
    except (TimeoutError, aiohttp.ClientError) as error:
        return f"{type(error).__name__}: {error}"


async def open_loop(
    send: Callable[[int, float], Coroutine[Any, Any, None]],
    rate: float,
    count: int,
    *,
    max_in_flight: int | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Start ``send(index, due)`` for ``index`` in ``range(count)``, each at its due time,
    ``index / rate`` seconds after the first on the event loop's clock, whatever the earlier ones
    do. ``max_in_flight`` bounds the sends not yet ended (the schedule slips behind it; None: the
    client's connections are the only bound); ``stop`` set stops starting new ones. Returns once
    every started send has ended."""
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    slots = asyncio.Semaphore(max_in_flight or max(1, count))
    tasks: set[asyncio.Task] = set()
    start = loop.time()
    for index in range(count):
        due = start + index / rate
        delay = due - loop.time()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
        if stop.is_set():
            break
        await slots.acquire()
        task = asyncio.create_task(send(index, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        task.add_done_callback(lambda _task: slots.release())
    await asyncio.gather(*tasks)


@dataclass
class LoadStats:
    """What a load run sent and got back, updated as answers arrive (a live table reads it)."""

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

    def record(self, answer: Answer, due: float | None = None) -> None:
        """Count one answer; the latency of a success counts from ``due`` when given (an open
        loop's schedule, so time queued in a client that fell behind counts), else from sending."""
        if not answer.ok:
            self.error(answer.kind, answer.detail)
            return
        self.ok += 1
        self.latencies_ms.append((answer.answered - (answer.sent if due is None else due)) * 1000)

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if self.first_error is None:
            self.first_error = f"{kind}: {detail}"


def not_ready_reason(base_url: str) -> str | None:
    """Why serving is not ready (None once it is), from its /readyz answer; a PlatformError with
    what to do next when it does not answer at all."""
    try:
        response = http_calls.get(f"{base_url}/readyz", timeout=5.0)
    except httpx.HTTPError as error:
        raise PlatformError(
            f"Serving is not reachable at {base_url} ({type(error).__name__}).",
            hint="Start the platform with `make up`; `make status` shows what is down.",
        ) from error
    if response.status_code != 200:
        return response.text.strip().removeprefix("Not ready: ") or f"HTTP {response.status_code}"
    # Ready with nothing loaded means no version is champion: nothing would answer yet.
    if _served_version(base_url) == 0:
        return "no champion yet: no model is served. Train and promote one (`make train`)."
    return None


def _served_version(base_url: str) -> float | None:
    """serving_model_version from serving's /metrics (0 while no model is loaded)."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = http_calls.get(f"{base_url}/metrics", timeout=5.0).text
    except httpx.HTTPError:
        return None
    for family in text_string_to_metric_families(text):
        if family.name == "serving_model_version":
            return max((sample.value for sample in family.samples), default=None)
    return None


async def run_traffic(
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
    """`mlops-lab traffic`: ``rps`` requests per second for ``duration_s``, cycling ``records``.

    For a ``feedback_rate`` share of the answered requests the record's true label is sent back
    through ``POST /feedback``, batched once a second as outcomes would arrive in practice.
    """
    rng = random.Random(seed)
    pending_labels: list[dict[str, Any]] = []
    async with client(base_url, max_in_flight) as session:

        async def send(index: int, _due: float) -> None:
            stats.sent += 1
            answer = await predict(session, records[index % len(records)], caller=TRAFFIC_CALLER)
            stats.record(answer)
            if answer.ok and rng.random() < feedback_rate:
                label = int(labels[index % len(labels)])
                pending_labels.append({"request_id": answer.json()["request_id"], "label": label})

        async def ship_labels(stop: asyncio.Event) -> None:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=_FEEDBACK_EVERY_S)
                batch = pending_labels[:]
                del pending_labels[: len(batch)]
                await _send_labels(session, batch, stats)

        stop = asyncio.Event()
        shipper = asyncio.create_task(ship_labels(stop))
        count = max(1, round(rps * duration_s))
        await open_loop(send, rps, count, max_in_flight=max_in_flight)
        stop.set()
        await shipper
        await _send_labels(session, pending_labels, stats)
    stats.finished = time.monotonic()


async def _send_labels(
    session: aiohttp.ClientSession, labels: list[dict[str, Any]], stats: LoadStats
) -> None:
    if not labels:
        return
    if await post_labels(session, labels, TRAFFIC_CALLER) is None:
        stats.labels_sent += len(labels)
    else:
        stats.labels_failed += len(labels)
