"""Prometheus, Alertmanager and Grafana configuration for the local runtime, from the settings.

What names hosts, ports, thresholds or durations is rendered here into the runtime's ``run/`` dir
on every ``up``: ``prometheus.yml``, the alert rules (:mod:`monitoring.rules`) and
``alertmanager.yml``. The renderings for the default settings are also committed under
``monitoring/`` (``make monitoring-assets``) for reading, ``promtool test rules`` and the kind
runtime; tests prove the committed files are current.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import yaml

from monitoring.rules import MONITORING_DIR, duration, rules_dir, rules_document
from platform_core.settings import Settings

GRAFANA_DIR = MONITORING_DIR / "grafana"
COMMITTED_ALERTMANAGER = MONITORING_DIR / "alertmanager" / "alertmanager.yml"
RULES_FILE = "mlops-lab.yml"

# Alertmanager batches alerts of one group into one notification; a changed group is re-sent
# after group_interval, an unchanged firing one after repeat_interval. The receiver deduplicates
# both, so these only bound how often it is asked.
GROUP_INTERVAL = "1m"
REPEAT_INTERVAL = "4h"


class ScrapeTarget(Protocol):
    # Read-only: the configs only read them (and the runtime's Service is frozen).
    @property
    def name(self) -> str: ...

    @property
    def metrics_path(self) -> str | None: ...

    def port(self, settings: Settings) -> int: ...


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
        "rule_files": [str(rules_dir(settings) / "*.yml")],
        "alerting": {
            "alertmanagers": [
                {"static_configs": [{"targets": [f"{settings.host}:{settings.alertmanager_port}"]}]}
            ]
        },
        "scrape_configs": jobs,
    }


def alertmanager_config(settings: Settings) -> dict:
    """Alerts labelled ``action: retrain`` go to the retrain receiver, all others are logged."""

    def webhook(name: str, path: str) -> dict:
        url = settings.url(settings.alert_receiver_port, path)
        return {"name": name, "webhook_configs": [{"url": url, "send_resolved": True}]}

    return {
        "route": {
            "receiver": "log",
            "group_by": ["alertname"],
            "group_wait": duration(settings.alert_group_wait_s),
            "group_interval": GROUP_INTERVAL,
            "repeat_interval": REPEAT_INTERVAL,
            "routes": [{"receiver": "retrain", "matchers": ['action="retrain"']}],
        },
        # A monitor that is down is also stale: say it once, as the more specific alert.
        "inhibit_rules": [
            {
                "source_matchers": ['alertname="TargetDown"'],
                "target_matchers": ['alertname="DriftMonitorStale"'],
                "equal": ["job", "instance"],
            }
        ],
        "receivers": [webhook("log", "/alerts/log"), webhook("retrain", "/alerts/retrain")],
    }


def prometheus_config_path(settings: Settings) -> Path:
    return settings.paths.run / "prometheus.yml"


def alertmanager_config_path(settings: Settings) -> Path:
    return settings.paths.run / "alertmanager.yml"


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings, so a PromQL expression reads as it was written."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def to_yaml(document: dict, header: str) -> str:
    return f"# {header}\n" + yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=100)


def _write_yaml(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "Rendered by mlops-lab from the settings on every `up`: edit the source, not this."
    path.write_text(to_yaml(document, header))


def write_prometheus_config(settings: Settings, services: Sequence[ScrapeTarget]) -> None:
    _write_yaml(rules_dir(settings) / RULES_FILE, rules_document(settings))
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
