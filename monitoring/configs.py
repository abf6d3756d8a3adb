"""Prometheus, Alertmanager and Grafana configuration for the local runtime, from the settings.

The files under ``monitoring/`` that do not depend on ports (alert rules, rule tests, dashboards,
provisioning) are committed as they are; only what names hosts and ports is rendered here, into
the runtime's ``run/`` dir.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import yaml

from mlops_lab.settings import Settings

MONITORING_DIR = Path(__file__).resolve().parent
RULES_DIR = MONITORING_DIR / "prometheus" / "rules"
GRAFANA_DIR = MONITORING_DIR / "grafana"


class ScrapeTarget(Protocol):
    name: str
    metrics_path: str | None

    def port(self, settings: Settings) -> int: ...


def duration(seconds: float) -> str:
    """Prometheus duration syntax: whole seconds as ``15s``, anything finer in milliseconds."""
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{round(seconds * 1000)}ms"


def prometheus_config(settings: Settings, services: Sequence[ScrapeTarget]) -> dict:
    """One scrape job per service that exposes metrics, alert rules, and our Alertmanager."""
    jobs = [
        {
            "job_name": service.name,
            "metrics_path": service.metrics_path,
            "static_configs": [
                {
                    "targets": [f"{settings.host}:{service.port(settings)}"],
                    "labels": {"service": service.name},
                }
            ],
        }
        for service in services
        if service.metrics_path
    ]
    return {
        "global": {
            "scrape_interval": duration(settings.scrape_interval_s),
            "evaluation_interval": duration(settings.rule_evaluation_interval_s),
            "external_labels": {"platform": "mlops-lab"},
        },
        "rule_files": [str(RULES_DIR / "*.yml")],
        "alerting": {
            "alertmanagers": [
                {"static_configs": [{"targets": [f"{settings.host}:{settings.alertmanager_port}"]}]}
            ]
        },
        "scrape_configs": jobs,
    }


def alertmanager_config(settings: Settings) -> dict:
    """Where alerts go. Until a receiver runs, alerts are kept and shown but sent nowhere."""
    return {
        "route": {
            "receiver": "default",
            "group_by": ["alertname"],
            "group_wait": "10s",
            "group_interval": "1m",
            "repeat_interval": "4h",
        },
        "receivers": [{"name": "default"}],
    }


def prometheus_config_path(settings: Settings) -> Path:
    return settings.paths.run / "prometheus.yml"


def alertmanager_config_path(settings: Settings) -> Path:
    return settings.paths.run / "alertmanager.yml"


def _write_yaml(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# Rendered by mlops-lab from the settings on every `up`: edit the source, not this.\n"
    path.write_text(header + yaml.safe_dump(document, sort_keys=False))


def write_prometheus_config(settings: Settings, services: Sequence[ScrapeTarget]) -> None:
    _write_yaml(prometheus_config_path(settings), prometheus_config(settings, services))


def write_alertmanager_config(settings: Settings, _services: Sequence[ScrapeTarget]) -> None:
    _write_yaml(alertmanager_config_path(settings), alertmanager_config(settings))


def grafana_admin_password(settings: Settings) -> str:
    """Generated once per data dir and never committed."""
    path = settings.paths.secrets / "grafana-admin-password"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(18))
    return path.read_text().strip()


def prepare_grafana(settings: Settings, _services: Sequence[ScrapeTarget]) -> None:
    for sub in ("data", "logs", "plugins"):
        (settings.paths.grafana / sub).mkdir(parents=True, exist_ok=True)
    grafana_admin_password(settings)


def grafana_env(settings: Settings) -> dict[str, str]:
    """Grafana reads GF_* variables; the provisioning files read the MLOPS_LAB_* ones."""
    data = settings.paths.grafana
    return {
        "GF_PATHS_DATA": str(data / "data"),
        "GF_PATHS_LOGS": str(data / "logs"),
        "GF_PATHS_PLUGINS": str(data / "plugins"),
        "GF_PATHS_PROVISIONING": str(GRAFANA_DIR / "provisioning"),
        "GF_SERVER_HTTP_ADDR": settings.host,
        "GF_SERVER_HTTP_PORT": str(settings.grafana_port),
        "GF_SECURITY_ADMIN_USER": "admin",
        "GF_SECURITY_ADMIN_PASSWORD": grafana_admin_password(settings),
        "GF_AUTH_ANONYMOUS_ENABLED": "true",
        "GF_AUTH_ANONYMOUS_ORG_ROLE": "Viewer",
        "GF_ANALYTICS_REPORTING_ENABLED": "false",
        "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
        "GF_NEWS_NEWS_FEED_ENABLED": "false",
        "MLOPS_LAB_PROMETHEUS_URL": settings.prometheus_url,
        "MLOPS_LAB_GRAFANA_DASHBOARDS_DIR": str(GRAFANA_DIR / "dashboards"),
    }
