"""One source of truth: settings from the environment, and the configs rendered from them."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from mlops_lab.runtime.services import SERVICES, by_name, runnable
from monitoring import configs
from platform_core.settings import Settings
from tests.support import settings_without_dotenv


def _write_rendered(settings: Settings, service: str) -> None:
    """Write what `up` would write for this service (the runtime renders, then writes)."""
    for path, text in by_name(service).files(settings, runnable()).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_environment_variables_override_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_LAB_MLFLOW_PORT", "5123")
    monkeypatch.setenv("MLOPS_LAB_MODEL_NAME", "churn")
    settings = settings_without_dotenv()
    assert settings.mlflow_port == 5123
    assert settings.model_name == "churn"
    assert settings.mlflow_url == "http://127.0.0.1:5123"


def test_child_environment_reproduces_the_same_settings(
    monkeypatch: pytest.MonkeyPatch, unstarted_settings: Settings
) -> None:
    settings = unstarted_settings.model_copy(update={"drift_interval_s": 7.5})
    for key, value in settings.to_env().items():
        monkeypatch.setenv(key, value)
    assert settings_without_dotenv() == settings


def test_every_port_setting_is_distinct_by_default() -> None:
    defaults = settings_without_dotenv()
    ports = [service.port(defaults) for service in SERVICES]
    assert len(ports) == len(set(ports))


@pytest.mark.parametrize(("seconds", "text"), [(15.0, "15s"), (1.0, "1s"), (0.5, "500ms")])
def test_durations_use_prometheus_syntax(seconds: float, text: str) -> None:
    assert configs.duration(seconds) == text


def test_prometheus_config_scrapes_each_service_with_metrics_on_its_port(
    unstarted_settings: Settings,
) -> None:
    settings = unstarted_settings
    rendered = configs.prometheus_config(settings, SERVICES)
    jobs = {job["job_name"]: job for job in rendered["scrape_configs"]}
    expected = {s.name for s in SERVICES if s.metrics_path}
    assert set(jobs) == expected
    for service in SERVICES:
        if service.metrics_path:
            target = jobs[service.name]["static_configs"][0]["targets"][0]
            assert target == f"{settings.host}:{service.port(settings)}"
    alertmanagers = rendered["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert alertmanagers == [f"{settings.host}:{settings.alertmanager_port}"]


def test_prometheus_logs_in_to_itself_and_alertmanager_by_password_file(
    unstarted_settings: Settings,
) -> None:
    settings = unstarted_settings
    rendered = configs.prometheus_config(settings, SERVICES)
    login = {"username": "mlops-lab", "password_file": str(settings.paths.monitoring_password)}
    assert rendered["alerting"]["alertmanagers"][0]["basic_auth"] == login
    jobs = {job["job_name"]: job.get("basic_auth") for job in rendered["scrape_configs"]}
    assert {name for name, auth in jobs.items() if auth} == {"prometheus", "alertmanager"}
    assert jobs["prometheus"] == jobs["alertmanager"] == login


def test_rendered_web_config_passes_promtool(unstarted_settings: Settings) -> None:
    settings = unstarted_settings
    _write_rendered(settings, "prometheus")
    path = configs.web_config_path(settings)
    assert f"--web.config.file={path}" in by_name("prometheus").command(settings)
    assert f"--web.config.file={path}" in by_name("alertmanager").command(settings)
    result = subprocess.run(
        ["promtool", "check", "web-config", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_datasource_logs_in_and_only_its_owner_can_read_it(
    unstarted_settings: Settings,
) -> None:
    settings = unstarted_settings
    configs.prepare_grafana(settings, SERVICES)
    provisioning = Path(configs.grafana_env(settings)["GF_PATHS_PROVISIONING"])
    datasource_file = provisioning / "datasources" / "prometheus.yml"
    assert stat.S_IMODE(datasource_file.stat().st_mode) == 0o600
    (datasource,) = yaml.safe_load(datasource_file.read_text())["datasources"]
    password = settings.paths.monitoring_password.read_text().strip()
    assert datasource["uid"] == "prometheus"
    assert datasource["url"] == settings.prometheus_url
    assert (datasource["basicAuth"], datasource["basicAuthUser"]) == (True, "mlops-lab")
    assert datasource["secureJsonData"] == {"basicAuthPassword": password}
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "mlops-lab.yml").read_text())[
        "providers"
    ]
    assert Path(provider["options"]["path"]) == configs.GRAFANA_DIR / "dashboards"


def test_rendered_prometheus_config_passes_promtool(unstarted_settings: Settings) -> None:
    settings = unstarted_settings
    _write_rendered(settings, "prometheus")
    result = subprocess.run(
        ["promtool", "check", "config", str(configs.prometheus_config_path(settings))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rendered_alertmanager_config_passes_amtool(unstarted_settings: Settings) -> None:
    settings = unstarted_settings
    _write_rendered(settings, "alertmanager")
    path = configs.alertmanager_config_path(settings)
    assert yaml.safe_load(path.read_text())["route"]["receiver"]
    result = subprocess.run(
        ["amtool", "check-config", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_child_environment_pins_both_mlflow_uris(
    monkeypatch: pytest.MonkeyPatch, unstarted_settings: Settings
) -> None:
    # mlflow.set_registry_uri() exports MLFLOW_REGISTRY_URI into the caller's environment.
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "http://127.0.0.1:1")
    env = unstarted_settings.to_env()
    assert env["MLFLOW_TRACKING_URI"] == unstarted_settings.mlflow_url
    assert env["MLFLOW_REGISTRY_URI"] == unstarted_settings.mlflow_url
