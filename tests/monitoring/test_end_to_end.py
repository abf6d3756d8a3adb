"""The whole loop on a real platform: traffic -> drift -> alert -> Alertmanager -> retrain.

Real serving, prediction log, drift monitor, Prometheus, Alertmanager, alert receiver, Prefect
(with the `flows` service running the retrain) and MLflow, with intervals of seconds; the drift
monitor checks when the story asks (`POST /check`), once its traffic is in the log. The story
runs once, step by step, each step on first use (:class:`Story`); each test asserts one thing
about it, so a failure names the broken link.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property

import httpx
import pandas as pd
import pytest
from prefect.client.schemas.objects import FlowRun

from monitoring.assets import default_settings
from monitoring.dashboards import all_dashboards
from pipelines import data
from platform_core import contract, promql
from platform_core.settings import Settings
from serving.schema import records_from_frame
from tests.models import RegisteredModel, register_champion
from tests.monitoring.prefect_support import retrain_runs
from tests.monitoring.support import check_now
from tests.support import scrape, wait_for

WINDOW_ROWS = 300
# Grafana picks $__rate_interval from the time range; 5m is what a 6-hour view would use.
RATE_INTERVAL = "5m"
# Panels whose query must run but may rightly return nothing after the scenario, and why.
# This story starts no rollout: test_rollout_live.py evaluates that dashboard during one.
WITHOUT_DATA_IN_THIS_STORY = {"rollout"}
MAY_BE_EMPTY = {
    "Inputs outside the training range": "serving creates a feature's series on its first "
    "out-of-range value, and the shifted traffic may stay inside the training range",
}


@dataclass
class Story:
    settings: Settings
    timings: dict[str, float] = field(default_factory=dict)
    drift_started_at: datetime | None = None

    # ---- platform access ----------------------------------------------------------------------

    @property
    def serving_url(self) -> str:
        return self.settings.url(self.settings.serving_port)

    def promql(self, expr: str) -> list[dict]:
        return promql.query(self.settings, expr)

    def value(self, expr: str) -> float | None:
        result = self.promql(expr)
        return result[0]["value"] if result else None

    def send(self, frame: pd.DataFrame, batch: int = 100) -> None:
        """Predict every row through the serving API, then send each true label as feedback."""
        labels = []
        with httpx.Client(base_url=self.serving_url, timeout=60) as client:
            for start in range(0, len(frame), batch):
                chunk = frame.iloc[start : start + batch]
                records = records_from_frame(chunk, data.FEATURE_NAMES)
                response = client.post("/predict", json={"records": records})
                response.raise_for_status()
                request_id = response.json()["request_id"]
                labels += [
                    {"request_id": request_id, "record_index": i, "label": int(y)}
                    for i, y in enumerate(chunk[data.TARGET])
                ]
            client.post("/feedback", json={"labels": labels}).raise_for_status()

    def check_until(self, done: Callable[[dict], bool], what: str) -> dict:
        """Drift checks, asked for one after another, until one's outcome is ``done``: serving
        writes predictions and labels to the log a moment after it answers."""

        def checked() -> dict | None:
            outcome = check_now(self.settings)
            return outcome if done(outcome) else None

        log = self.settings.paths.log_file("drift-monitor")
        return wait_for(checked, 90, 1.0, what=what, log=log)

    # ---- the story, one step at a time --------------------------------------------------------

    @cached_property
    def champion(self) -> RegisteredModel:
        registered = register_champion(self.settings, seed=3, rows=4_000)
        wait_for(
            lambda: (
                scrape(f"{self.serving_url}/metrics").get(
                    f'serving_model_version{{model_name="{self.settings.model_name}"}}'
                )
                == float(registered.version)
            ),
            120,
            what=f"serving to load version {registered.version}",
        )
        return registered

    @cached_property
    def baseline(self) -> dict[str, float | None]:
        """Baseline traffic (plus one rejected request), as the monitor saw it."""
        assert self.champion
        self.send(data.generate(WINDOW_ROWS, "baseline", seed=31))
        bad = httpx.post(
            f"{self.serving_url}/predict", json={"records": [{"age": "forty"}]}, timeout=30
        )
        assert bad.status_code == 400, bad.text
        self.check_until(
            lambda outcome: (
                outcome["status"] == "ok"
                and outcome["window_rows"] >= WINDOW_ROWS
                and (outcome.get("performance") or {}).get("labelled_rows", 0) >= WINDOW_ROWS
            ),
            what="a drift check over the whole labelled baseline window",
        )
        wait_for(
            lambda: (
                self.value('drift_check_status{status="ok"}') == 1
                and (self.value("drift_window_rows") or 0) >= WINDOW_ROWS
                and (self.value("model_performance_labelled_rows") or 0) >= WINDOW_ROWS
            ),
            30,
            what="Prometheus to scrape that check",
        )
        return {
            "drifted_features": self.value("sum(drift_feature_drifted)"),
            "dataset_drifted": self.value("drift_dataset_drifted"),
        }

    @cached_property
    def drifted(self) -> dict:
        """Covariate-shift traffic until the drift alert fires; dashboards evaluated right then."""
        assert self.baseline is not None
        self.drift_started_at = datetime.now(UTC)
        started = time.monotonic()
        self.send(data.generate(WINDOW_ROWS, "covariate_shift", seed=32))
        self.check_until(lambda outcome: bool(outcome.get("dataset_drifted")), "dataset drift")
        firing = 'ALERTS{alertname="DataDriftDetected", alertstate="firing"}'
        wait_for(lambda: self.promql(firing), 120, 0.25, what="DataDriftDetected to fire")
        self.timings["drift traffic -> alert firing"] = time.monotonic() - started
        over = self.promql(
            "drift_feature_score > on (job, instance, feature, method) drift_feature_threshold"
        )
        pending = self.promql(
            'count_over_time(ALERTS{alertname="DataDriftDetected", alertstate="pending"}[10m])'
        )
        return {
            "over_threshold": {series["metric"]["feature"] for series in over},
            "was_pending": bool(pending),
            "dashboards": self._evaluate_dashboards(),
        }

    def _evaluate_dashboards(self) -> dict[str, list[dict]]:
        results = {}
        for name, dashboard in all_dashboards(default_settings()).items():
            if name in WITHOUT_DATA_IN_THIS_STORY:
                continue
            for title, expr in dashboard.queries():
                query = expr.replace("$__rate_interval", RATE_INTERVAL)
                results[f"{name} / {title} / {expr}"] = self.promql(query)
        return results

    @cached_property
    def retrain_run(self) -> FlowRun:
        assert self.drifted
        receiver = self.settings.url(self.settings.alert_receiver_port, "/decisions")

        def started() -> dict | None:
            decisions = httpx.get(receiver, timeout=5).json()
            return next((d for d in decisions if d["action"] == "started"), None)

        decision = wait_for(started, 60, what="the receiver to start a retrain")
        if self.drift_started_at is not None:
            created = datetime.fromisoformat(decision["at"]) - self.drift_started_at
            self.timings["drift traffic -> retrain run created"] = created.total_seconds()

        def finished() -> FlowRun | None:
            runs = retrain_runs(self.settings)
            run = next(r for r in runs if str(r.id) == decision["flow_run_id"])
            return run if run.state and run.state.is_final() else None

        run = wait_for(finished, 300, 2, what=f"retrain flow run {decision['flow_run_id']}")
        if run.start_time is not None and self.drift_started_at is not None:
            delay = (run.start_time - self.drift_started_at).total_seconds()
            self.timings["drift traffic -> retrain run started"] = delay
        return run


@pytest.fixture(scope="module")
def story(platform: Settings) -> Iterator[Story]:
    told = Story(platform)
    yield told
    for what, seconds in told.timings.items():
        print(f"\n[e2e timing] {what}: {seconds:.1f}s")


def test_baseline_traffic_drifts_no_feature(story: Story) -> None:
    assert story.baseline == {"drifted_features": 0.0, "dataset_drifted": 0.0}


def test_shifted_traffic_pushes_the_shifted_features_over_their_thresholds(story: Story) -> None:
    assert data.DRIFTED_FEATURES["covariate_shift"] <= story.drifted["over_threshold"]


def test_the_drift_alert_is_pending_before_it_fires(story: Story) -> None:
    assert story.drifted["was_pending"]


def test_alertmanager_makes_the_receiver_start_exactly_one_retrain(story: Story) -> None:
    run = story.retrain_run
    ours = [r for r in retrain_runs(story.settings) if r.parameters["reason"].startswith("alert")]
    assert [str(r.id) for r in ours] == [str(run.id)]
    assert "DataDriftDetected" in run.parameters["reason"]


def test_the_retrain_run_completes_and_registers_a_new_version(story: Story) -> None:
    run = story.retrain_run
    assert run.state is not None and run.state.is_completed(), run.state
    client = contract.client_for(story.settings)
    versions = client.search_model_versions(f"name='{story.settings.model_name}'")
    assert max(int(v.version) for v in versions) > int(story.champion.version)


def test_every_dashboard_query_returns_data_after_the_scenario(story: Story) -> None:
    empty = [
        panel
        for panel, result in story.drifted["dashboards"].items()
        if not any(f" / {title} / " in panel for title in MAY_BE_EMPTY)
        and not any(math.isfinite(series["value"]) for series in result)
    ]
    assert not empty, "queries without a finite value:\n" + "\n".join(empty)
