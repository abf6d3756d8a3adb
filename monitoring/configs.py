"""Prometheus, Alertmanager and Grafana configuration for the local runtime, from the settings.

What names hosts, ports, thresholds or durations is rendered here into the runtime's ``run/`` dir
on every ``up``: ``prometheus.yml``, the alert rules (:mod:`monitoring.rules`),
``alertmanager.yml``, the web config that makes both ask for the platform's password
(:mod:`platform_core.monitoring_auth`) and an HTTP config for ``amtool``. None of them holds the
password: the web config holds its bcrypt hash, the others the path of the password file. The
renderings for the default settings are also committed under
``monitoring/`` (``make monitoring-assets``) for reading, ``promtool test rules`` and the kind
runtime; tests prove the committed files are current.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import yaml

from monitoring import team_rules
from monitoring.rules import MONITORING_DIR, duration, rules_dir, rules_document
from platform_core import monitoring_auth
from platform_core.paths import private_file
from platform_core.settings import Settings

GRAFANA_DIR = MONITORING_DIR / "grafana"
COMMITTED_ALERTMANAGER = MONITORING_DIR / "alertmanager" / "alertmanager.yml"
RULES_FILE = "mlops-lab.yml"

# Alertmanager batches alerts of one group into one notification; a changed group is re-sent
# after group_interval (``alert_group_interval_s``), an unchanged firing one after
# repeat_interval. The receiver deduplicates both, so these only bound how often it is asked.
REPEAT_INTERVAL = "4h"


class ScrapeTarget(Protocol):
    # Read-only: the configs only read them (and the runtime's Service is frozen).
    @property
    def name(self) -> str: ...

    @property
    def metrics_path(self) -> str | None: ...

    @property
    def password_protected(self) -> bool: ...

    def port(self, settings: Settings) -> int: ...


def basic_auth(settings: Settings) -> dict:
    """How Prometheus and amtool log in to Prometheus and Alertmanager: the password is read
    from its file, never written into their configs."""
    return {
        "username": monitoring_auth.USER,
        "password_file": str(settings.paths.monitoring_password),
    }


def _scrape_job(settings: Settings, service: ScrapeTarget) -> dict:
    job = {"job_name": service.name, "metrics_path": service.metrics_path}
    if service.password_protected:
        job["basic_auth"] = basic_auth(settings)
    job["static_configs"] = [
        {
            "targets": [f"{settings.host}:{service.port(settings)}"],
            "labels": {"service": service.name},
        }
    ]
    return job


def prometheus_config(settings: Settings, services: Sequence[ScrapeTarget]) -> dict:
    """One scrape job per service that exposes metrics, alert rules, and our Alertmanager."""
    jobs = [_scrape_job(settings, service) for service in services if service.metrics_path]
    return {
        "global": {
            "scrape_interval": duration(settings.scrape_interval_s),
            "evaluation_interval": duration(settings.rule_evaluation_interval_s),
            "external_labels": {"platform": "mlops-lab"},
        },
        # The platform's rules, rendered on every start, then the ones its users own.
        "rule_files": [str(rules_dir(settings) / "*.yml"), str(team_rules.pattern(settings))],
        "alerting": {
            "alertmanagers": [
                {
                    "basic_auth": basic_auth(settings),
                    "static_configs": [
                        {"targets": [f"{settings.host}:{settings.alertmanager_port}"]}
                    ],
                }
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
            "group_interval": duration(settings.alert_group_interval_s),
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


def web_config(settings: Settings) -> dict:
    """What Prometheus and Alertmanager read with ``--web.config.file``: every request, their
    UIs' included, logs in as the platform's user (the password is generated on first use)."""
    return {
        "basic_auth_users": {monitoring_auth.USER: monitoring_auth.password_hash(settings.paths)}
    }


def amtool_config(settings: Settings) -> dict:
    """For ``amtool --http.config.file``: amtool's commands that ask Alertmanager log in."""
    return {"basic_auth": basic_auth(settings)}


def prometheus_config_path(settings: Settings) -> Path:
    return settings.paths.run / "prometheus.yml"


def alertmanager_config_path(settings: Settings) -> Path:
    return settings.paths.run / "alertmanager.yml"


def web_config_path(settings: Settings) -> Path:
    return settings.paths.run / "web.yml"


def amtool_config_path(settings: Settings) -> Path:
    return settings.paths.run / "amtool.yml"


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


def grafana_provisioning_dir(settings: Settings) -> Path:
    return settings.paths.grafana / "provisioning"


def grafana_datasources(settings: Settings) -> dict:
    """Grafana's one datasource, our Prometheus, which asks Grafana for the password too."""
    prometheus = {
        "name": "Prometheus",
        "uid": "prometheus",
        "type": "prometheus",
        "access": "proxy",
        "url": settings.prometheus_url,
        "isDefault": True,
        "editable": False,
        "basicAuth": True,
        "basicAuthUser": monitoring_auth.USER,
        "secureJsonData": {"basicAuthPassword": monitoring_auth.password(settings.paths)},
    }
    return {"apiVersion": 1, "datasources": [prometheus]}


def grafana_dashboards(_settings: Settings) -> dict:
    """The dashboards provider: the JSON files :mod:`monitoring.dashboards` writes."""
    provider = {
        "name": "mlops-lab",
        "folder": "mlops-lab",
        "type": "file",
        "disableDeletion": True,
        "allowUiUpdates": False,
        "updateIntervalSeconds": 30,
        "options": {"path": str(GRAFANA_DIR / "dashboards"), "foldersFromFilesStructure": False},
    }
    return {"apiVersion": 1, "providers": [provider]}


def prepare_grafana(settings: Settings, _services: Sequence[ScrapeTarget]) -> None:
    """Grafana's folders, its admin password and its provisioning, rendered when it starts. The
    datasource file holds the monitoring password, so only its owner may read it (0600)."""
    for sub in ("data", "logs", "plugins"):
        (settings.paths.grafana / sub).mkdir(parents=True, exist_ok=True)
    grafana_admin_password(settings)
    provisioning = grafana_provisioning_dir(settings)
    header = "Rendered by mlops-lab from the settings whenever Grafana starts: edit the source."
    dashboards = provisioning / "dashboards" / "mlops-lab.yml"
    dashboards.parent.mkdir(parents=True, exist_ok=True)
    dashboards.write_text(to_yaml(grafana_dashboards(settings), header))
    private_file(
        provisioning / "datasources" / "prometheus.yml",
        to_yaml(grafana_datasources(settings), header),
    )


def grafana_env(settings: Settings) -> dict[str, str]:
    """Grafana reads GF_* variables; its provisioning is rendered by :func:`prepare_grafana`."""
    data = settings.paths.grafana
    return {
        "GF_PATHS_DATA": str(data / "data"),
        "GF_PATHS_LOGS": str(data / "logs"),
        "GF_PATHS_PLUGINS": str(data / "plugins"),
        "GF_PATHS_PROVISIONING": str(grafana_provisioning_dir(settings)),
        "GF_SERVER_HTTP_ADDR": settings.host,
        "GF_SERVER_HTTP_PORT": str(settings.grafana_port),
        "GF_SECURITY_ADMIN_USER": "admin",
        "GF_SECURITY_ADMIN_PASSWORD": grafana_admin_password(settings),
        "GF_AUTH_ANONYMOUS_ENABLED": "true",
        "GF_AUTH_ANONYMOUS_ORG_ROLE": "Viewer",
        "GF_ANALYTICS_REPORTING_ENABLED": "false",
        "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
        "GF_NEWS_NEWS_FEED_ENABLED": "false",
    }
