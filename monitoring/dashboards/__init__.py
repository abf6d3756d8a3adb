"""The platform's Grafana dashboards: Serving, Drift, Model and Rollout.

Queries use the metric names of serving (``serving_*``, BentoML's ``bentoml_service_*``), the
drift monitor (``drift_*``, ``model_performance_*``, see :mod:`monitoring.exporter`) and the alert
receiver (``alert_receiver_*``); thresholds come from the settings. ``make monitoring-assets``
writes them to ``monitoring/grafana/dashboards/``, where Grafana's provisioning loads them.
"""

from __future__ import annotations

from monitoring.dashboards import drift, model, rollout, serving
from monitoring.grafana_json import Dashboard
from platform_core.settings import Settings


def all_dashboards(settings: Settings) -> dict[str, Dashboard]:
    """File name (without .json) -> dashboard."""
    return {
        "serving": serving.dashboard(settings),
        "drift": drift.dashboard(settings),
        "model": model.dashboard(settings),
        "rollout": rollout.dashboard(settings),
    }
