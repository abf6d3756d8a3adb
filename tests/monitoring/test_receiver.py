"""The alert receiver against a real Prefect server and the real `retrain/retrain` deployment.

Decision tests run the receiver's app in-process, each with its own incident book; the failure
test talks to the receiver process that supervisord runs.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from mlops_lab.runtime.local.runtime import LocalRuntime
from monitoring.receiver import create_app
from platform_core.settings import Settings
from tests.monitoring.prefect_support import (
    create_retrain_deployment,
    remove_retrain_deployment,
    retrain_runs,
)
from tests.monitoring.support import log_lines, notification
from tests.support import running_platform, scrape, wait_for


# A platform of its own, not the area's: these tests delete the retrain deployment, which the
# area's `flows` service serves; their runs are never executed (no `flows` here), where the area's
# would train a model each; and the failure tests need a receiver process with no incident open.
@pytest.fixture(scope="module")
def platform() -> Iterator[Settings]:
    with running_platform(["prefect", "alert-receiver"]) as settings:
        yield settings


@pytest.fixture
def deployed(platform: Settings) -> Settings:
    create_retrain_deployment(platform)
    return platform


@pytest.fixture
def receiver(deployed: Settings, tmp_path: Path) -> Iterator[TestClient]:
    """The receiver app with an empty incident book of its own, called at a name it answers to
    (TestClient's default, ``testserver``, is one the web guard refuses)."""
    app = create_app(deployed.model_copy(update={"home": tmp_path}))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client


def _token() -> str:
    return uuid.uuid4().hex[:12]


def _runs_mentioning(settings: Settings, token: str) -> list:
    return [run for run in retrain_runs(settings) if token in run.parameters.get("reason", "")]


def test_a_retrain_alert_starts_one_run_with_the_alert_as_reason(
    receiver: TestClient, deployed: Settings
) -> None:
    token = _token()
    response = receiver.post(
        "/alerts/retrain", json=notification(f"group-{token}", f"50% drifted {token}")
    )
    assert response.status_code == 200
    decision = response.json()["decision"]
    assert decision["action"] == "started"
    (run,) = _runs_mentioning(deployed, token)
    assert str(run.id) == decision["flow_run_id"]
    assert run.parameters["reason"] == f"alert DataDriftDetected: 50% drifted {token}"


def test_a_repeated_notification_starts_no_second_run(
    receiver: TestClient, deployed: Settings
) -> None:
    token = _token()
    payload = notification(f"group-{token}", f"drift {token}")
    first = receiver.post("/alerts/retrain", json=payload).json()["decision"]
    again = receiver.post("/alerts/retrain", json=payload).json()["decision"]
    assert again["action"] == "duplicate"
    assert again["flow_run_id"] == first["flow_run_id"]
    assert len(_runs_mentioning(deployed, token)) == 1


def test_a_second_incident_within_the_cooldown_starts_nothing(
    receiver: TestClient, deployed: Settings
) -> None:
    token = _token()
    receiver.post("/alerts/retrain", json=notification(f"drift-{token}", f"drift {token}"))
    second = notification(
        f"auc-{token}", f"auc {token}", alertname="ModelPerformanceDegraded", fingerprint="77aa"
    )
    decision = receiver.post("/alerts/retrain", json=second).json()["decision"]
    assert decision["action"] == "cooldown"
    assert len(_runs_mentioning(deployed, token)) == 1


def test_a_resolved_notification_closes_the_incident(receiver: TestClient) -> None:
    token = _token()
    receiver.post("/alerts/retrain", json=notification(f"group-{token}", "drift"))
    resolved = notification(f"group-{token}", "drift", status="resolved")
    decision = receiver.post("/alerts/retrain", json=resolved).json()["decision"]
    assert decision["action"] == "resolved"
    assert "incident closed" in decision["reason"]


def test_every_decision_is_logged_and_listed(
    receiver: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    token = _token()
    with caplog.at_level(logging.INFO, logger="mlops_lab.alert_receiver"):
        receiver.post("/alerts/retrain", json=notification(f"group-{token}", "drift"))
        receiver.post("/alerts/retrain", json=notification(f"group-{token}", "drift"))
    logged = [r.getMessage() for r in caplog.records if f"group-{token}" in r.getMessage()]
    assert [m.split("decision=")[1].split()[0] for m in logged] == ["started", "duplicate"]
    listed = [d["action"] for d in receiver.get("/decisions").json()]
    assert listed[-2:] == ["started", "duplicate"]


def test_other_alerts_are_only_logged(
    receiver: TestClient, deployed: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    token = _token()
    payload = notification(f"group-{token}", f"mlflow down {token}", alertname="TargetDown")
    with caplog.at_level(logging.INFO, logger="mlops_lab.alert_receiver"):
        response = receiver.post("/alerts/log", json=payload)
    assert response.json() == {"logged": 1}
    assert any(
        "TargetDown firing" in r.getMessage() and token in r.getMessage() for r in caplog.records
    )
    assert _runs_mentioning(deployed, token) == []


def test_a_malformed_notification_is_rejected_naming_the_field(receiver: TestClient) -> None:
    payload = notification("group", "drift")
    del payload["groupKey"]
    response = receiver.post("/alerts/retrain", json=payload)
    assert response.status_code == 422
    assert "groupKey" in response.text


def test_missing_deployment_is_logged_and_the_receiver_keeps_running(
    platform: Settings,
) -> None:
    remove_retrain_deployment(platform)
    url = platform.url(platform.alert_receiver_port)
    token = _token()
    payload = notification(f"group-{token}", f"drift {token}")
    response = httpx.post(f"{url}/alerts/retrain", json=payload, timeout=30)
    assert response.status_code == 503
    reason = response.json()["decision"]["reason"]
    assert "'retrain/retrain'" in reason and "flows" in reason
    # The log reaches its file through supervisord, a moment after the answer.
    line = f"decision=failed alerts=DataDriftDetected group=group-{token}"
    wait_for(lambda: line in log_lines(platform, "alert-receiver"), 15, what=f"{line!r} logged")
    info = LocalRuntime(platform).supervisor.process_info()["alert-receiver"]
    assert info["statename"] == "RUNNING"
    assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
    metrics = scrape(f"{url}/metrics")
    assert metrics['alert_receiver_retrain_decisions_total{decision="failed"}'] >= 1


def test_a_failed_incident_starts_its_retrain_once_the_deployment_exists(
    platform: Settings,
) -> None:
    remove_retrain_deployment(platform)
    url = platform.url(platform.alert_receiver_port)
    token = _token()
    payload = notification(f"group-{token}", f"drift {token}", fingerprint=token)
    assert httpx.post(f"{url}/alerts/retrain", json=payload, timeout=30).status_code == 503
    create_retrain_deployment(platform)
    # What Alertmanager does after a 503: send the same notification again.
    retried = httpx.post(f"{url}/alerts/retrain", json=payload, timeout=30)
    assert retried.status_code == 200
    assert retried.json()["decision"]["action"] == "started"
    assert len(_runs_mentioning(platform, token)) == 1


def test_forgetting_the_incidents_ends_the_cooldown(
    receiver: TestClient, deployed: Settings
) -> None:
    """A lab reset closes the lab's incidents: the next lab's first alert starts its retrain."""
    token = _token()
    receiver.post("/alerts/retrain", json=notification(f"drift-{token}", f"drift {token}"))
    forgotten = receiver.post("/incidents/forget")
    assert forgotten.status_code == 200 and forgotten.json() == {"closed": 1}
    second = notification(
        f"auc-{token}", f"auc {token}", alertname="ModelPerformanceDegraded", fingerprint="77aa"
    )
    decision = receiver.post("/alerts/retrain", json=second).json()["decision"]
    assert decision["action"] == "started", decision
    assert len(_runs_mentioning(deployed, token)) == 2
