"""`python -m mlops_lab.front_end`: run the loan front end until stopped.

Endpoints on ``front_end_port``: ``/healthz`` (the process answers) and ``/status`` (the
configuration in effect, what was sent and answered, the last error).

Requests and feedback go through :mod:`mlops_lab.front_end.loadgen`, like every load client's;
the schedule is this module's own: its rate follows the configuration file as it changes, and
when serving falls behind a request is dropped (counted as backpressure), not queued.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import json
import logging
import random
import signal
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import aiohttp
from aiohttp import web

from mlops_lab.front_end import config as front_end_config
from mlops_lab.front_end import loadgen
from mlops_lab.front_end import outcomes as outcomes_feed
from mlops_lab.front_end.config import CONVERSIONS, FrontEndConfig
from platform_core.errors import PlatformError
from platform_core.settings import Settings, get_settings

log = logging.getLogger("mlops_lab.front_end")

_CHUNK = 500  # applicants generated at a time
_MAX_IN_FLIGHT = 32


@dataclass
class Counts:
    sent: int = 0
    answered: int = 0
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    outcomes_reported: int = 0
    last_error: str | None = None
    config_error: str | None = None
    models_seen: collections.Counter[str] = field(default_factory=collections.Counter)


class Applicants:
    """An endless stream of generated applications with their true outcomes."""

    def __init__(self) -> None:
        self._rows: collections.deque[tuple[dict[str, Any], int]] = collections.deque()
        self._chunk = 0
        self._key: tuple[str, int] | None = None

    def next(self, config: FrontEndConfig) -> tuple[dict[str, Any], int]:
        key = (config.population, config.seed)
        if key != self._key:  # a new population applies from now on
            self._rows.clear()
            self._key, self._chunk = key, 0
        if not self._rows:
            self._refill(config)
        return self._rows.popleft()

    def _refill(self, config: FrontEndConfig) -> None:
        from pipelines import data

        frame = data.generate(_CHUNK, config.population, seed=config.seed * 100_003 + self._chunk)
        self._chunk += 1
        labels = frame[data.TARGET].astype(int).tolist()
        features = frame[list(data.FEATURE_NAMES)].astype(object)
        # pandas-stubs leave None out of `where`'s `other`, which pandas takes as any scalar.
        missing_as_none = features.where(features.notna(), None)  # pyright: ignore[reportArgumentType]
        records = cast(list[dict[str, Any]], missing_as_none.to_dict("records"))
        self._rows.extend(zip(records, labels, strict=True))


def as_sent(record: dict[str, Any], config: FrontEndConfig) -> dict[str, Any]:
    """The application as this front end puts it on the wire: each feature in the unit its
    configuration's ``units`` names (a missing value stays missing)."""
    converted = {
        feature: round(record[feature] / conversion.divisor, conversion.digits)
        for feature, unit in config.units
        if (conversion := CONVERSIONS.get((feature, unit))) is not None
        and record.get(feature) is not None
    }
    return {**record, **converted} if converted else record


def applicant_key(record: dict[str, Any]) -> str:
    """A stable id of the applicant behind an application, as a bank's front end would send its
    customer number: the same application is answered by the same version during a canary."""
    canonical = json.dumps(record, sort_keys=True, default=str).encode()
    return hashlib.blake2b(canonical, digest_size=8).hexdigest()


def caller_of(config: FrontEndConfig, record: dict[str, Any] | None = None) -> str:
    """How this front end names itself in a request (its ``caller``, with what it quotes of the
    request filled in: a new request id, the applicant's id, the time sent)."""
    return config.caller.format(
        request_id=uuid.uuid4().hex,
        applicant_id=applicant_key(record) if record is not None else "",
        sent_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
    )


class FrontEnd:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.path = front_end_config.config_path(settings)
        self.config = FrontEndConfig()
        self._mtime: float | None = None
        self.counts = Counts()
        self.applicants = Applicants()
        self.rng = random.Random(0)
        # Outcomes become known feedback_delay_s after their answer (due, monotonic), in order.
        self.outcomes: collections.deque[outcomes_feed.Known] = collections.deque()
        # What the outcomes feed can join on besides an outcome's own request id.
        self.answered = outcomes_feed.AnsweredLog()
        self._last_answered: str | None = None
        self.ledger = outcomes_feed.ledger_path(settings)
        self.started = time.time()

    def reload(self) -> None:
        try:
            mtime = self.path.stat().st_mtime if self.path.exists() else None
        except OSError:
            return
        if mtime == self._mtime:
            return
        self._mtime = mtime
        try:
            new = front_end_config.read(self.path)
        except PlatformError as error:
            self.counts.config_error = error.message
            log.error("%s Keeping the previous configuration.", error.message)
            return
        self.counts.config_error = None
        if new != self.config:
            log.info("Configuration %s: %s", "loaded" if mtime else "defaults", new.model_dump())
            self.rng = random.Random(new.seed)
        self.config = new

    async def send_one(self, session: aiohttp.ClientSession) -> None:
        record, label = self.applicants.next(self.config)
        self.counts.sent += 1
        answer = await loadgen.predict(
            session,
            as_sent(record, self.config),
            applicant_key=applicant_key(record),
            caller=caller_of(self.config, record),
        )
        if not answer.ok:
            self._error(answer.kind, answer.detail)
            return
        body = answer.json()
        self.counts.answered += 1
        self.counts.models_seen[str(body.get("model_version"))] += 1
        request_id, now = str(body["request_id"]), time.monotonic()
        previous, self._last_answered = self._last_answered, request_id
        self.answered.add(now, request_id)
        if self.rng.random() < self.config.feedback_share:
            due = now + self.config.feedback_delay_s
            self.outcomes.append(outcomes_feed.Known(request_id, label, previous, due))

    async def report_outcomes(self, session: aiohttp.ClientSession) -> None:
        now = time.monotonic()
        known: list[outcomes_feed.Known] = []
        while self.outcomes and self.outcomes[0].due <= now and len(known) < 500:
            known.append(self.outcomes.popleft())
        if not known:
            return
        reported_for = outcomes_feed.attach(self.config.outcome_join, known, self.answered)
        # The system of record first: what became of each loan, and which prediction it went to.
        at = time.time()
        outcomes_feed.append(
            self.ledger,
            (
                outcomes_feed.Entry(k.request_id, k.outcome, at, r)
                for k, r in zip(known, reported_for, strict=True)
            ),
        )
        due = [
            {"request_id": r, "label": k.outcome}
            for k, r in zip(known, reported_for, strict=True)
            if r is not None
        ]
        if not due:
            return
        problem = await loadgen.post_labels(session, due, caller_of(self.config))
        if problem is None:
            self.counts.outcomes_reported += len(due)
        else:
            self._error("feedback", problem)

    def _error(self, kind: str, detail: str) -> None:
        self.counts.errors[kind] += 1
        if detail != self.counts.last_error:
            log.warning("%s: %s", kind, detail)
        self.counts.last_error = detail

    def status(self) -> dict[str, Any]:
        c = self.counts
        return {
            "config_file": str(self.path),
            "config": self.config.model_dump(),
            "config_error": c.config_error,
            "sent": c.sent,
            "answered": c.answered,
            "errors": dict(c.errors),
            "outcomes_reported": c.outcomes_reported,
            "outcomes_pending": len(self.outcomes),
            "outcomes_ledger": str(self.ledger),
            "answered_by_model_version": dict(c.models_seen),
            "last_error": c.last_error,
            "uptime_s": round(time.time() - self.started, 1),
        }

    async def run(self, stop: asyncio.Event) -> None:
        serving = self.settings.url(self.settings.serving_port)
        slots = asyncio.Semaphore(_MAX_IN_FLIGHT)
        async with loadgen.client(serving, _MAX_IN_FLIGHT) as session:
            loop = asyncio.get_running_loop()
            next_send = loop.time()
            last_tick = 0.0
            tasks: set[asyncio.Task] = set()
            while not stop.is_set():
                now = loop.time()
                if now - last_tick >= 1.0:
                    last_tick = now
                    self.reload()
                    tasks.add(asyncio.create_task(self.report_outcomes(session)))
                if now >= next_send:
                    next_send = max(next_send + 1.0 / self.config.rate_per_s, now - 1.0)
                    if slots.locked():
                        self._error("backpressure", "serving answers slower than the rate")
                    else:
                        await slots.acquire()
                        task = asyncio.create_task(self.send_one(session))
                        task.add_done_callback(lambda _t: slots.release())
                        tasks.add(task)
                tasks = {t for t in tasks if not t.done()}
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=max(0.0, next_send - loop.time()))
            await asyncio.gather(*tasks, return_exceptions=True)


async def main_async(settings: Settings) -> None:
    front_end = FrontEnd(settings)
    front_end.reload()

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def status(_request: web.Request) -> web.Response:
        return web.json_response(front_end.status())

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/status", status)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.front_end_port).start()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    log.info(
        "Sending applications to %s; configuration %s",
        settings.url(settings.serving_port),
        front_end.path,
    )
    try:
        await front_end.run(stop)
    finally:
        await runner.cleanup()


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(main_async(get_settings()))


if __name__ == "__main__":
    main()
