"""Helpers for the monitoring tests: real models in MLflow, rows in the real prediction log.

Models are trained and registered with the pipeline's own functions (no Prefect needed), and
traffic is written straight into the prediction-log table: that table is the contract between
serving and the drift monitor, so the monitor can be tested before and without serving.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from platform_core.settings import Settings


def delete_reference(settings: Settings, run_id: str) -> None:
    """Lose the reference sample from the artifact store, as a wiped bucket would."""
    found = list((settings.paths.mlflow / "artifacts").glob(f"**/{run_id}/**/reference.parquet"))
    assert found, f"no reference artifact stored for run {run_id}"
    for path in found:
        path.unlink()


def check_now(settings: Settings) -> dict:
    """Ask the platform's drift monitor for a check now (``POST /check``); its outcome, as
    ``/status`` gives it. A check in progress (the one at start) ends first."""
    response = httpx.post(settings.url(settings.drift_monitor_port, "/check"), timeout=120)
    response.raise_for_status()
    return response.json()


def log_lines(settings: Settings, service: str) -> str:
    path: Path = settings.paths.log_file(service)
    return path.read_text(errors="replace") if path.exists() else ""


def notification(
    group_key: str,
    summary: str,
    alertname: str = "DataDriftDetected",
    status: str = "firing",
    fingerprint: str = "4f2b1c9d0e7a6b35",
    starts_at: str = "2025-01-01T10:00:00Z",
) -> dict:
    """An Alertmanager webhook payload (version 4) with one alert, as Alertmanager sends it.

    Alerts other than the retrain ones carry no ``action`` label and go to the ``log`` receiver.
    """
    retrain = alertname in {"DataDriftDetected", "ModelPerformanceDegraded"}
    labels = {"alertname": alertname, "severity": "warning"}
    if retrain:
        labels["action"] = "retrain"
    return {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "retrain" if retrain else "log",
        "groupLabels": {"alertname": alertname},
        "commonLabels": labels,
        "commonAnnotations": {"summary": summary},
        "externalURL": "http://127.0.0.1:9093",
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": {"summary": summary},
                "startsAt": starts_at,
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://127.0.0.1:9090/graph",
                "fingerprint": fingerprint,
            }
        ],
    }
