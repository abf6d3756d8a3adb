"""The drift monitor service: a drift check every ``drift_interval_s``, exported to Prometheus.

Run by the local runtime as ``python -m monitoring.monitor``. Endpoints:

- ``/healthz``: liveness (the process answers), never depends on MLflow or traffic;
- ``/metrics``: the Prometheus metrics of :mod:`monitoring.exporter`;
- ``/status``: the last check as JSON (what ``mlops-lab drift check`` would print);
- ``POST /check``: a check now, its outcome as ``/status`` would give it (a lab reset asks for
  one rather than wait up to ``drift_interval_s`` for a result that has seen the latest traffic).

Whatever a check runs into (no champion, no traffic, MLflow down) is logged and exported as a
status; the loop keeps going, so the monitor recovers by itself when the platform does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI

from monitoring.exporter import DriftMetrics
from monitoring.webapp import configure_logging, serve, service_app
from platform_core import mlflow_client, prediction_log
from platform_core.settings import Settings, get_settings
from platform_core.web_guard import AllowedHosts

if TYPE_CHECKING:
    from monitoring.check import CheckOutcome, DriftChecker

log = logging.getLogger("mlops_lab.drift_monitor")


class MonitorLoop:
    """Runs checks on a background thread: Evidently is CPU-bound and must not block /metrics.

    The thread also does the slow imports (Evidently, MLflow: 10 s and more on a busy laptop),
    so /healthz and /metrics answer as soon as the process starts.
    """

    def __init__(self, settings: Settings, metrics: DriftMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.last: CheckOutcome | None = None
        self._checker: DriftChecker | None = None
        # One check at a time: the loop's and those asked for on POST /check.
        self._checking = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drift-checks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def run_once(self) -> CheckOutcome:
        with self._checking:
            if self._checker is None:
                from monitoring.check import DriftChecker

                self._checker = DriftChecker(self.settings)
            outcome = self._checker.check()
            self.metrics.publish(outcome)
            self.last = outcome
            if outcome.registry_reachable is not False:
                # MLflow just failed the check's probe: asking it again would only add the
                # client's timeouts to the loop; the last export stands until it is back.
                self._analyse_rollout(self._checker)
        log.log(
            logging.INFO if outcome.healthy else logging.WARNING,
            "drift check %s in %.2fs: %s",
            outcome.status.value,
            outcome.duration_s,
            outcome.message,
        )
        return outcome

    def _analyse_rollout(self, checker: DriftChecker) -> None:
        """The rollout in progress, exported beside the drift check (bounded reads: see
        platform_core.rollout_analysis). Errors and latency are left to Prometheus's recording
        rules. A failure keeps the last export: the candidate did not change, we could not look."""
        from mlflow.exceptions import MlflowException
        from sqlalchemy.exc import SQLAlchemyError

        from platform_core import contract
        from platform_core.rollout_analysis import analyse

        try:
            client = contract.client_for(self.settings)
            analysis = analyse(self.settings, client, checker.engine, prometheus=False)
        # OSError covers the HTTP layer's connection errors (requests' exceptions derive from it).
        except (MlflowException, OSError, SQLAlchemyError) as error:
            log.warning("rollout analysis skipped: %s", str(error).splitlines()[0])
            return
        self.metrics.publish_rollout(analysis)

    def _run(self) -> None:
        s = self.settings
        log.info(
            "Checking drift every %ss over the newest %d predictions of %s (MLflow %s, log %s)",
            s.drift_interval_s,
            s.drift_window_rows,
            s.model_name,
            s.mlflow_url,
            prediction_log.safe_url(s.prediction_log_db_url),
        )
        while True:
            self.run_once()
            wait = max(0.0, s.drift_interval_s - (self.last.duration_s if self.last else 0.0))
            if self._stop.wait(wait):
                return


def create_app(settings: Settings) -> FastAPI:
    metrics = DriftMetrics(settings)
    loop = MonitorLoop(settings, metrics)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        loop.start()
        yield
        loop.stop()

    hosts = AllowedHosts.of(settings, "drift-monitor")
    app = service_app("mlops-lab drift monitor", metrics.registry, hosts, lifespan)

    @app.get("/status")
    def status() -> dict:
        if loop.last is None:
            return {"status": "starting", "message": "The first check has not finished yet."}
        return loop.last.to_document()

    @app.post("/check")
    def check() -> dict:
        return loop.run_once().to_document()

    app.state.loop = loop
    return app


def main() -> None:
    configure_logging()
    # One check waits seconds for MLflow; the next interval tries again.
    mlflow_client.apply(mlflow_client.MONITOR)
    settings = get_settings()
    serve(create_app(settings), settings, settings.drift_monitor_port)


if __name__ == "__main__":
    main()
