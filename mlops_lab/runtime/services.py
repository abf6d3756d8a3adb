"""What the local runtime runs: one declarative entry per service.

Adding a process to the platform means adding one :class:`Service` to :data:`SERVICES`: its port
setting, health check, command line and, if it exposes metrics, its scrape path. The supervisor
config, the port checks, `status`, the Prometheus scrape config and the tests all read this list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from mlops_lab.runtime import executables
from mlops_lab.runtime.executables import Executable, venv_bin
from monitoring import configs, rules, team_rules
from platform_core import monitoring_auth
from platform_core.errors import PlatformError
from platform_core.settings import ENV_PREFIX, Settings

Command = Callable[[Settings], list[str]]
# The config files a service's command reads, rendered from the settings: {path: text}.
Files = Callable[[Settings, Sequence["Service"]], dict[Path, str]]
_HEADER = "Rendered by mlops-lab from the settings on every `up`: edit the source, not this."


@dataclass(frozen=True)
class Service:
    name: str
    title: str
    port_setting: str
    health_path: str
    command: Command
    # An external program this service needs; ``None`` for Python entry points in our venv.
    program: Executable | None = None
    # Optional services are skipped (and shown as "not installed") when their program is absent.
    optional: bool = False
    metrics_path: str | None = None
    ui_path: str = "/"
    env: Callable[[Settings], dict[str, str]] = field(default=lambda _s: {})
    # Rendered on every `up` with the services being started; the runtime compares them with
    # what a running platform reads before it writes anything.
    files: Files = field(default=lambda _s, _services: {})
    # Creates what the service needs on disk (directories); runs only when it is started.
    prepare: Callable[[Settings, Sequence[Service]], None] = field(
        default=lambda _s, _services: None
    )
    # Lower starts first (supervisor priority).
    priority: int = 100
    # Not started by `up`: a lab starts it while it runs, and reset stops it.
    on_demand: bool = False
    # The signal that makes a running process re-read its configuration files. Prometheus and
    # Alertmanager reload on SIGHUP without a gap in scrapes or notifications; a reload also
    # marks the series of removed targets stale at once, where a restart leaves them for 5 min.
    reload_signal: str | None = None
    # What a Kubernetes readiness probe asks, when it is not the health check: serving is Ready
    # once its model is loaded, not as soon as the process answers.
    ready_path: str | None = None
    # Every request, health checks and scrapes included, must log in with the platform's
    # monitoring password (platform_core.monitoring_auth): Prometheus and Alertmanager.
    password_protected: bool = False

    def port(self, settings: Settings) -> int:
        return int(getattr(settings, self.port_setting))

    def env_var(self) -> str:
        """The variable that changes this service's port."""
        return f"{ENV_PREFIX}{self.port_setting.upper()}"

    def url(self, settings: Settings, path: str | None = None) -> str:
        return settings.url(self.port(settings), self.ui_path if path is None else path)

    def installed(self) -> bool:
        return self.program is None or self.program.find() is not None

    def auth(self, settings: Settings) -> httpx.BasicAuth | None:
        """The credentials a request to this service sends, if it asks for any."""
        return monitoring_auth.auth(settings) if self.password_protected else None


def _program_path(program: Executable) -> str:
    found = program.find()
    if found is None:
        raise FileNotFoundError(f"{program.title} is not installed. {program.install_hint()}")
    return str(found)


def _python_module(module: str) -> Command:
    """A service that is one of this project's modules, run by the venv's interpreter."""
    return lambda _s: [str(venv_bin("python")), "-m", module]


def _mlflow_command(s: Settings) -> list[str]:
    port = s.mlflow_port
    return [
        # `mlflow server` with the same options, minus its idle ~250 MiB parent process.
        str(venv_bin("python")),
        "-m",
        "mlops_lab.runtime.local.mlflow_server",
        "--backend-store-uri",
        f"sqlite:///{s.paths.mlflow_store}",
        "--artifacts-destination",
        str(s.paths.mlflow / "artifacts"),
        "--serve-artifacts",
        "--host",
        s.host,
        "--port",
        str(port),
        "--workers",
        "1",
        # Only the names clients really use reach the server: guards against DNS rebinding.
        "--allowed-hosts",
        f"{s.host},{s.host}:{port},localhost,localhost:{port}",
        "--expose-prometheus",
        str(s.paths.mlflow / "metrics"),
    ]


def _mlflow_env(_s: Settings) -> dict[str, str]:
    # The server-side job runner starts about eight extra processes (~500 MB) for features
    # this platform does not use.
    return {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def _prefect_command(s: Settings) -> list[str]:
    return [
        str(venv_bin("prefect")),
        "server",
        "start",
        "--host",
        s.host,
        "--port",
        str(s.prefect_port),
        "--analytics-off",
    ]


def _prefect_ui_origins(s: Settings) -> str:
    """Where a browser opens Prefect's UI: the configured host, or the loopback names for it."""
    hosts = dict.fromkeys([s.host, "127.0.0.1", "localhost"])
    return ",".join(f"http://{host}:{s.prefect_port}" for host in hosts)


def _prefect_env(s: Settings) -> dict[str, str]:
    return {
        "PREFECT_HOME": str(s.paths.prefect),
        "PREFECT_API_DATABASE_CONNECTION_URL": (
            f"sqlite+aiosqlite:///{s.paths.prefect / 'prefect.db'}"
        ),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_API_URL": s.prefect_api_url,
        # Prefect allows every origin by default: any web page could then read runs and their
        # logs and start or delete them. Its UI calls from its own origin; everything else here
        # calls through Prefect's client, which fetches a CSRF token when the server asks for one.
        "PREFECT_SERVER_CORS_ALLOWED_ORIGINS": _prefect_ui_origins(s),
        "PREFECT_SERVER_CSRF_PROTECTION_ENABLED": "true",
    }


def _prometheus_command(s: Settings) -> list[str]:
    return [
        _program_path(executables.PROMETHEUS),
        f"--config.file={configs.prometheus_config_path(s)}",
        f"--storage.tsdb.path={s.paths.prometheus}",
        f"--web.listen-address={s.host}:{s.prometheus_port}",
        # Every request logs in (platform_core.monitoring_auth).
        f"--web.config.file={configs.web_config_path(s)}",
        # No --web.enable-lifecycle: new rules or targets arrive through `up` or a reload
        # signal, so /-/quit and /-/reload need not answer anyone, logged in or not.
    ]


def _prometheus_files(s: Settings, services: Sequence[Service]) -> dict[Path, str]:
    return {
        rules.rules_dir(s) / configs.RULES_FILE: configs.to_yaml(rules.rules_document(s), _HEADER),
        configs.prometheus_config_path(s): configs.to_yaml(
            configs.prometheus_config(s, services), _HEADER
        ),
        configs.web_config_path(s): configs.to_yaml(configs.web_config(s), _HEADER),
    }


def _check_team_rules(s: Settings, _services: Sequence[Service]) -> None:
    """Before Prometheus starts or reloads: the rules its users own must load, or nothing is
    applied (a start would fail, a reload would keep the old rules and say so only in its log)."""
    promtool = executables.PROMTOOL.find()
    found = team_rules.problems(s, promtool) if promtool and team_rules.files(s) else []
    if found:
        raise PlatformError(
            "Prometheus would refuse these rules, so nothing was applied: " + "; ".join(found),
            hint="Correct the file (`promtool check rules FILE` says the same), or move it out "
            f"of {team_rules.directory(s)}, then run the command again.",
        )


def _alertmanager_files(s: Settings, _services: Sequence[Service]) -> dict[Path, str]:
    return {
        configs.alertmanager_config_path(s): configs.to_yaml(
            configs.alertmanager_config(s), _HEADER
        ),
        configs.web_config_path(s): configs.to_yaml(configs.web_config(s), _HEADER),
        configs.amtool_config_path(s): configs.to_yaml(configs.amtool_config(s), _HEADER),
    }


def _alertmanager_command(s: Settings) -> list[str]:
    return [
        _program_path(executables.ALERTMANAGER),
        f"--config.file={configs.alertmanager_config_path(s)}",
        f"--storage.path={s.paths.alertmanager}",
        f"--web.listen-address={s.host}:{s.alertmanager_port}",
        f"--web.config.file={configs.web_config_path(s)}",
        # An empty address turns off HA gossip, which would otherwise listen on 0.0.0.0:9094.
        "--cluster.listen-address=",
    ]


def _grafana_command(s: Settings) -> list[str]:
    binary = executables.GRAFANA.find()
    if binary is None:
        raise FileNotFoundError(executables.GRAFANA.install_hint())
    home = executables.grafana_homepath(binary)
    # `grafana server` is the current CLI; older packages only ship `grafana-server`.
    head = [str(binary), "server"] if binary.name == "grafana" else [str(binary)]
    return [*head, "--homepath", str(home)]


SERVICES: tuple[Service, ...] = (
    Service(
        name="mlflow",
        title="MLflow",
        port_setting="mlflow_port",
        health_path="/health",
        command=_mlflow_command,
        env=_mlflow_env,
        metrics_path="/metrics",
        priority=10,
    ),
    Service(
        name="prefect",
        title="Prefect",
        port_setting="prefect_port",
        health_path="/api/health",
        command=_prefect_command,
        env=_prefect_env,
        priority=10,
    ),
    Service(
        name="prometheus",
        title="Prometheus",
        port_setting="prometheus_port",
        health_path="/-/ready",
        command=_prometheus_command,
        program=executables.PROMETHEUS,
        metrics_path="/metrics",
        files=_prometheus_files,
        prepare=_check_team_rules,
        reload_signal="HUP",
        password_protected=True,
        priority=20,
    ),
    Service(
        name="alertmanager",
        title="Alertmanager",
        port_setting="alertmanager_port",
        health_path="/-/ready",
        command=_alertmanager_command,
        program=executables.ALERTMANAGER,
        metrics_path="/metrics",
        files=_alertmanager_files,
        reload_signal="HUP",
        password_protected=True,
        priority=20,
    ),
    Service(
        name="grafana",
        title="Grafana",
        port_setting="grafana_port",
        health_path="/api/health",
        command=_grafana_command,
        program=executables.GRAFANA,
        optional=True,
        metrics_path="/metrics",
        env=configs.grafana_env,
        prepare=configs.prepare_grafana,
        priority=30,
    ),
    # Serves the train and retrain Prefect deployments (pipelines/runner.py).
    Service(
        name="flows",
        title="Prefect flows",
        port_setting="flows_port",
        health_path="/health",
        ui_path="/health",
        command=_python_module("pipelines.runner"),
        priority=20,
    ),
    # Liveness for `up` (it must succeed before any model has been trained); a cluster's
    # readiness probe asks /readyz, which waits for the champion when there is one.
    Service(
        name="serving",
        title="Serving (BentoML)",
        port_setting="serving_port",
        health_path="/livez",
        ready_path="/readyz",
        # `python -m serving` execs `bentoml serve` with the settings' host, port and MLflow
        # patience: the container image starts it the same way.
        command=_python_module("serving"),
        metrics_path="/metrics",
        ui_path="/",
        priority=30,
    ),
    # Drift of live traffic against the champion's reference, exported to Prometheus
    # (monitoring/monitor.py). Reports MLflow or the log being down as a status, never crashes.
    Service(
        name="drift-monitor",
        title="Drift monitor",
        port_setting="drift_monitor_port",
        health_path="/healthz",
        command=_python_module("monitoring.monitor"),
        metrics_path="/metrics",
        ui_path="/status",
        priority=30,
    ),
    # The loan front end: a simulated client application that sends applications and their
    # outcomes while a lab runs (mlops_lab/front_end). Not scraped: it is the outside world.
    Service(
        name="front-end",
        title="Loan front end (simulated client)",
        port_setting="front_end_port",
        health_path="/healthz",
        command=_python_module("mlops_lab.front_end"),
        ui_path="/status",
        priority=40,
        on_demand=True,
    ),
    # Alertmanager's webhooks: retrain alerts start the Prefect retrain (monitoring/receiver.py).
    Service(
        name="alert-receiver",
        title="Alert receiver",
        port_setting="alert_receiver_port",
        health_path="/healthz",
        command=_python_module("monitoring.receiver"),
        metrics_path="/metrics",
        ui_path="/decisions",
        priority=20,
    ),
)


def runnable(services: Sequence[Service] = SERVICES) -> list[Service]:
    """The services this machine can run: optional ones only when their program is installed."""
    return [s for s in services if s.installed() or not s.optional]


def by_name(name: str) -> Service:
    for service in SERVICES:
        if service.name == name:
            return service
    known = ", ".join(s.name for s in SERVICES)
    raise KeyError(f"Unknown service {name!r}. Known services: {known}.")
