"""The single source of truth for names, hosts, ports, paths, aliases, thresholds and intervals.

Every runtime, config renderer, service and test reads these values from here. Each field can be
overridden with an environment variable named ``MLOPS_LAB_<FIELD>`` (for example
``MLOPS_LAB_MLFLOW_PORT=5001``) or with the same line in a ``.env`` file at the repository root.
Child processes started by the platform receive the effective settings through
:meth:`Settings.to_env`, so a service never disagrees with the command that started it.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]
ENV_PREFIX = "MLOPS_LAB_"
# sun_path holds 108 bytes on Linux and 104 on macOS, including the terminating NUL.
_MAX_UNIX_SOCKET_PATH = 100


class Settings(BaseSettings):
    """Effective platform settings (defaults, then ``.env``, then environment variables)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=REPO_ROOT / ".env",
        extra="ignore",
        frozen=True,
    )

    # Where all state lives: SQLite stores, artifacts, logs, rendered configs.
    home: Path = Field(default=REPO_ROOT / ".lab", description="Data dir for the local runtime.")
    host: str = Field(default="127.0.0.1", description="Interface every local service binds to.")

    # Ports of the local runtime. The kind runtime uses the same numbers as container ports.
    mlflow_port: int = 5000
    prefect_port: int = 4200
    serving_port: int = 3000
    drift_monitor_port: int = 8001
    alert_receiver_port: int = 8002
    flows_port: int = 8003
    prometheus_port: int = 9090
    alertmanager_port: int = 9093
    grafana_port: int = 3001

    # Model registry.
    model_name: str = "loan-default"
    experiment_name: str = "loan-default"
    champion_alias: str = "champion"
    challenger_alias: str = "challenger"

    # --- pipeline: data, training, quality gate ---
    default_rows: int = Field(default=20_000, ge=100, description="Rows `train` generates.")
    random_seed: int = 42
    reference_rows: int = Field(default=5_000, ge=100, description="Reference sample for drift.")
    gate_min_auc: float = Field(default=0.70, description="Absolute floor for any champion.")
    gate_margin_auc: float = Field(default=0.005, description="How much a challenger must win by.")
    min_training_rows: int = Field(default=200, ge=20, description="Fewer rows fail validation.")
    retrain_traffic_rows: int = Field(
        default=5_000, ge=1, description="Newest labelled predictions a retrain learns from."
    )

    # --- serving ---
    alias_poll_interval_s: float = Field(default=5.0, gt=0)
    max_batch_records: int = Field(default=1_000, ge=1)
    # Empty: SQLite under the data dir. Any SQLAlchemy URL works (PostgreSQL on kind).
    prediction_log_url: str = ""
    prediction_log_queue_size: int = Field(default=100_000, ge=1)
    prediction_log_flush_interval_s: float = Field(default=0.5, gt=0)

    # --- monitoring ---
    scrape_interval_s: float = Field(default=15.0, gt=0)
    rule_evaluation_interval_s: float = Field(default=15.0, gt=0)
    drift_interval_s: float = Field(default=60.0, gt=0)
    drift_window_rows: int = Field(default=1_000, ge=10)
    drift_min_rows: int = Field(default=200, ge=10)
    # Per-feature thresholds, calibrated on the loan data: 100 baseline windows of 200+ rows all
    # stay below them, and every drift scenario lands well above (monitoring/README.md).
    drift_numeric_threshold: float = Field(
        default=0.3, gt=0, description="Normed Wasserstein distance that counts as drift."
    )
    drift_categorical_threshold: float = Field(
        default=0.2, gt=0, le=1, description="Jensen-Shannon distance that counts as drift."
    )
    drift_missing_increase: float = Field(
        default=0.1, gt=0, le=1, description="Rise in a feature's missing share that is drift."
    )
    drift_share_threshold: float = Field(
        default=0.3, gt=0, le=1, description="Share of drifted features that is dataset drift."
    )
    drift_alert_for_s: float = Field(
        default=120.0, ge=0, description="How long drift or poor performance lasts before retrain."
    )
    performance_min_labels: int = Field(
        default=100, ge=10, description="Labelled predictions needed to report accuracy and AUC."
    )
    alert_for_s: float = Field(
        default=300.0, ge=0, description="How long an error, latency, stale or down alert waits."
    )
    alert_error_ratio: float = Field(default=0.05, gt=0, le=1, description="5xx share that alerts.")
    alert_latency_p99_s: float = Field(default=0.5, gt=0, description="Serving p99 latency SLO.")
    alert_group_wait_s: float = Field(default=10.0, ge=0, description="Alertmanager group_wait.")
    retrain_cooldown_s: float = Field(default=900.0, ge=0)

    # How long `up` waits for every service to answer its health check.
    startup_timeout_s: float = Field(default=180.0, gt=0)

    def url(self, port: int, path: str = "") -> str:
        return f"http://{self.host}:{port}{path}"

    @property
    def mlflow_url(self) -> str:
        return self.url(self.mlflow_port)

    @property
    def prefect_api_url(self) -> str:
        return self.url(self.prefect_port, "/api")

    @property
    def prediction_log_db_url(self) -> str:
        return self.prediction_log_url or f"sqlite:///{self.paths.home / 'predictions.db'}"

    @property
    def prometheus_url(self) -> str:
        return self.url(self.prometheus_port)

    @property
    def alertmanager_url(self) -> str:
        return self.url(self.alertmanager_port)

    @property
    def paths(self) -> LabPaths:
        return LabPaths(self.home)

    def to_env(self) -> dict[str, str]:
        """Environment for child processes: our settings plus the clients' own variables."""
        env = {
            f"{ENV_PREFIX}{name.upper()}": str(value) for name, value in self.model_dump().items()
        }
        env["MLFLOW_TRACKING_URI"] = self.mlflow_url
        # Without this, an MLFLOW_REGISTRY_URI inherited from the caller (MLflow's own
        # set_registry_uri() exports one) would send model loads to another server.
        env["MLFLOW_REGISTRY_URI"] = self.mlflow_url
        env["PREFECT_API_URL"] = self.prefect_api_url
        # Clients must never fall back to an ephemeral Prefect server: that would hide an outage.
        env["PREFECT_SERVER_ALLOW_EPHEMERAL_MODE"] = "false"
        env["PREFECT_HOME"] = str(self.paths.prefect)
        # Progress bars for each artifact download only clutter service logs.
        env["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
        return env


class LabPaths:
    """Layout of the data dir. Only this class knows where things are inside ``home``."""

    def __init__(self, home: Path) -> None:
        self.home = home

    @property
    def run(self) -> Path:
        """Rendered configs, sockets and pid files: safe to delete when nothing runs."""
        return self.home / "run"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def mlflow(self) -> Path:
        return self.home / "mlflow"

    @property
    def prefect(self) -> Path:
        return self.home / "prefect"

    @property
    def prometheus(self) -> Path:
        return self.home / "prometheus"

    @property
    def alertmanager(self) -> Path:
        return self.home / "alertmanager"

    @property
    def grafana(self) -> Path:
        return self.home / "grafana"

    @property
    def secrets(self) -> Path:
        return self.home / "secrets"

    @property
    def supervisor_socket(self) -> Path:
        path = self.run / "supervisor.sock"
        if len(str(path)) < _MAX_UNIX_SOCKET_PATH:
            return path
        # A deep checkout would exceed the kernel's limit for socket paths: use /tmp instead,
        # keyed by the data dir so two checkouts never share one supervisor.
        digest = hashlib.sha256(str(self.home).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"mlops-lab-{digest}.sock"

    @property
    def supervisor_conf(self) -> Path:
        return self.run / "supervisord.conf"

    @property
    def supervisor_pidfile(self) -> Path:
        return self.run / "supervisord.pid"

    @property
    def marker(self) -> Path:
        """Proves a directory is ours before `clean` deletes it."""
        return self.home / ".mlops-lab"

    def log_file(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    def ensure(self) -> None:
        for path in (
            self.run,
            self.logs,
            self.mlflow,
            self.prefect,
            self.prometheus,
            self.alertmanager,
            self.grafana,
            self.secrets,
        ):
            path.mkdir(parents=True, exist_ok=True)
        self.marker.touch(exist_ok=True)


def get_settings() -> Settings:
    """Settings from the current environment (and ``.env``)."""
    return Settings()
