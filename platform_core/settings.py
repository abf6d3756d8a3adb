"""The single source of truth for names, hosts, ports, paths, aliases, thresholds and intervals.

Every runtime, config renderer, service and test reads these values from here. Each field can be
overridden with an environment variable named ``MLOPS_LAB_<FIELD>`` (for example
``MLOPS_LAB_MLFLOW_PORT=5001``) or with the same line in a ``.env`` file at the repository root.
Child processes started by the platform receive the effective settings through
:meth:`Settings.to_env`, so a service never disagrees with the command that started it.
"""

from __future__ import annotations

import ipaddress
import json
import os
import unicodedata
from pathlib import Path

from dotenv import dotenv_values
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from platform_core import telemetry
from platform_core.errors import PlatformError
from platform_core.paths import DataPaths

REPO_ROOT = Path(__file__).resolve().parents[1]
ENV_PREFIX = "MLOPS_LAB_"
# Control characters and Unicode's line and paragraph separators: each ends a line somewhere
# (a config file, str.splitlines, a log line).
_NOT_ON_A_LINE = frozenset({"Cc", "Zl", "Zp"})


def line_breaker(text: str) -> str | None:
    """The first character of ``text`` that does not belong on one line of a config, if any."""
    return next((c for c in text if unicodedata.category(c) in _NOT_ON_A_LINE), None)


def _texts(value: object) -> list[tuple[str, str]]:
    """``(where, text)`` for each piece of text in a setting's value, dict keys included."""
    if isinstance(value, SecretStr):
        return [("", value.get_secret_value())]
    if isinstance(value, str | Path):
        return [("", str(value))]
    if isinstance(value, dict):
        found = []
        for key, item in value.items():
            found.append(("a key", str(key)))
            found += [(where or f"the {key!r} entry", text) for where, text in _texts(item)]
        return found
    if isinstance(value, list):
        return [pair for item in value for pair in _texts(item)]
    return []


class Settings(BaseSettings):
    """Effective platform settings (defaults, then ``.env``, then environment variables)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=REPO_ROOT / ".env",
        extra="ignore",
        frozen=True,
        # A rejected value is never echoed: it may be a credential.
        hide_input_in_errors=True,
    )

    # Where all state lives: SQLite stores, artifacts, logs, rendered configs.
    home: Path = Field(default=REPO_ROOT / ".lab", description="Data dir for the local runtime.")
    # Lab progress, postmortems and drill boxes: outside `home`, so `clean` never touches them.
    learner_home: Path = Field(
        default=REPO_ROOT / ".learner", description="The learner's own folder (lab progress)."
    )
    host: str = Field(default="127.0.0.1", description="Interface every local service binds to.")
    # No service authenticates its callers: binding beyond loopback must be a deliberate choice.
    allow_remote_access: bool = Field(
        default=False, description="Allow a non-loopback `host` (containers, a lab VM)."
    )

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
    front_end_port: int = 8004

    # Model registry.
    model_name: str = "loan-default"
    experiment_name: str = "loan-default"
    champion_alias: str = "champion"
    challenger_alias: str = "challenger"
    # A version tried beside the champion (`mlops-lab rollout`): in shadow or as a canary.
    candidate_alias: str = "candidate"

    # --- pipeline: data, training, quality gate ---
    default_rows: int = Field(default=20_000, ge=100, description="Rows `train` generates.")
    random_seed: int = 42
    reference_rows: int = Field(default=5_000, ge=100, description="Reference sample for drift.")
    gate_min_auc: float = Field(default=0.70, description="Absolute floor for any champion.")
    gate_margin_auc: float = Field(default=0.005, description="How much a challenger must win by.")
    # Sanity checks: results too good to be true are a leak (a feature that encodes the label),
    # not a model; a gate that only asks "is it better?" promotes them.
    gate_sanity_checks: bool = Field(default=True, description="Refuse implausible models.")
    gate_max_auc: float = Field(
        default=0.97, gt=0.5, le=1.0, description="Held-out AUC above this is implausible."
    )
    gate_max_feature_auc: float = Field(
        default=0.95,
        gt=0.5,
        le=1.0,
        description="A single feature separating the classes this well on its own is a leak.",
    )
    min_training_rows: int = Field(default=200, ge=20, description="Fewer rows fail validation.")
    retrain_traffic_rows: int = Field(
        default=5_000, ge=1, description="Newest labelled predictions a retrain learns from."
    )

    # --- serving ---
    alias_poll_interval_s: float = Field(default=5.0, gt=0)
    max_batch_records: int = Field(default=1_000, ge=1)
    # Records waiting to be scored before serving sheds load with 503 + Retry-After; 0 means
    # eight full batches.
    max_waiting_records: int = Field(default=0, ge=0)
    # Holding a batch open lets it fill under light load (fewer, larger model calls) at the cost
    # of that much added latency for every request; 0 scores whatever is queued at once.
    serving_batch_wait_s: float = Field(
        default=0.0, ge=0, le=10, description="How long a batch waits for more requests."
    )
    # Empty: SQLite under the data dir. Any SQLAlchemy URL works (PostgreSQL on kind). It may
    # hold a password: a SecretStr, so a repr or log of the settings shows stars; read it through
    # prediction_log_db_url, show it through prediction_log.safe_url, never write it to a file.
    prediction_log_url: SecretStr = SecretStr("")
    prediction_log_queue_size: int = Field(default=100_000, ge=1)
    prediction_log_flush_interval_s: float = Field(default=0.5, gt=0)
    # Records answered by the champion and waiting for a shadow candidate to score them; past it
    # they are not shadow-scored (and counted), so a slow candidate never holds memory or CPU.
    shadow_queue_records: int = Field(default=10_000, ge=1)
    # serving_caller_requests_total counts requests by their X-Caller header. Each value is a
    # series Prometheus keeps: only these callers are counted by name, any other as "other"
    # (serving/callers.py). "*" names every caller as it says: safe only for fixed names.
    serving_callers: str = Field(
        default="loan-front-end,mlops-lab-traffic",
        description="Callers serving counts by name (comma-separated; '*': every caller).",
    )

    # --- automatic rollout decision (pipelines/rollout_decision.py) ---
    # The rollout-decision flow runs on this interval; while a rollout is in progress it weighs
    # the live evidence (platform_core/rollout_analysis.py) against the rules below and promotes,
    # extends or aborts. With no rollout in progress a run reads one alias and ends.
    rollout_check_interval_s: float = Field(
        default=300.0, ge=1, description="How often the rollout-decision flow runs."
    )
    rollout_min_scored: int = Field(
        default=500,
        ge=1,
        description="Records the candidate must have scored (requests, for error and latency "
        "rules) before any rule judges it; until then the rollout is extended.",
    )
    rollout_min_labelled: int = Field(
        default=200,
        ge=1,
        description="Outcomes (labels) each version needs before their live AUCs are compared.",
    )
    rollout_max_error_ratio: float = Field(
        default=1.5,
        ge=1,
        description="The candidate's error rate may be at most this times the champion's "
        "(plus rollout_error_rate_allowance); above it, abort.",
    )
    rollout_error_rate_allowance: float = Field(
        default=0.005,
        ge=0,
        le=1,
        description="Absolute error rate added to the ratio's limit, so a champion with no "
        "errors does not make one error fatal.",
    )
    rollout_max_p99_ratio: float = Field(
        default=1.5,
        ge=1,
        description="The candidate's p99 latency may be at most this times the champion's "
        "(plus rollout_p99_allowance_s); above it, abort.",
    )
    rollout_p99_allowance_s: float = Field(
        default=0.01,
        ge=0,
        description="Absolute latency added to the p99 limit, so 1 ms against 2 ms is no "
        "reason to abort.",
    )
    rollout_min_auc_difference: float = Field(
        default=-0.005,
        ge=-1,
        le=1,
        description="Candidate AUC minus champion AUC must clear this: promote when the lower "
        "confidence bound does, abort when the upper bound does not (negative: 'no worse than').",
    )
    rollout_auc_z: float = Field(
        default=1.645,
        ge=0,
        le=5,
        description="Standard errors either side of the AUC difference (1.645: one-sided 95 %).",
    )
    rollout_min_agreement: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Shadow only: share of records on which the candidate must predict the "
        "champion's class; below it, abort (a broken model, not a better one). 0 turns it off.",
    )
    rollout_max_age_s: float = Field(
        default=86_400.0,
        gt=0,
        description="A rollout still undecided after this long is aborted ('no decision within').",
    )

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
    alert_rate_window_s: float = Field(
        default=300.0, gt=0, description="Window of the serving error-ratio and latency alerts."
    )
    alert_series_growth: int = Field(
        default=500,
        ge=1,
        description="Series a target may add over the rate window before TargetSeriesGrowing.",
    )
    alert_group_wait_s: float = Field(default=10.0, ge=0, description="Alertmanager group_wait.")
    alert_group_interval_s: float = Field(
        default=60.0,
        gt=0,
        description="Alertmanager group_interval: how soon a changed group is notified again.",
    )
    # --- rollout analysis (`mlops-lab rollout status`, the drift monitor's rollout_* gauges) ---
    analysis_window_rows: int = Field(
        default=20_000, ge=100, description="Newest log rows a rollout's analysis reads per check."
    )
    analysis_min_records: int = Field(
        default=30, ge=10, description="Labelled rows (AUC) or shadow pairs a figure needs."
    )
    alert_rollout_error_factor: float = Field(
        default=2.0, gt=1, description="Candidate error ratio, times the champion's, that alerts."
    )
    alert_rollout_error_floor: float = Field(
        default=0.01, gt=0, le=1, description="Candidate error ratio below which none alerts."
    )
    alert_shadow_agreement_min: float = Field(
        default=0.9, gt=0, le=1, description="Shadow agreement with the champion that alerts."
    )
    retrain_cooldown_s: float = Field(default=900.0, ge=0)

    # --- labs: the simulated loan front end that sends traffic while a lab runs ---
    front_end_rate_per_s: float = Field(
        default=5.0, gt=0, le=200, description="Applications the front end sends per second."
    )

    # How long `up` waits for every service to answer its health check.
    startup_timeout_s: float = Field(default=180.0, gt=0)

    # Where one service reaches another, by service name ("mlflow", "prefect", "prometheus",
    # "alertmanager"); unnamed ones are reached on `host`. On Kubernetes each is its Service's
    # name: MLOPS_LAB_SERVICE_HOSTS='{"mlflow": "mlflow", "prefect": "prefect"}'.
    service_hosts: dict[str, str] = Field(default_factory=dict)
    # Other names a service answers to, by service name: the host of an Ingress in front of it
    # (platform_core/web_guard.py refuses a Host or Origin naming anything else).
    # MLOPS_LAB_ALLOWED_HOSTS='{"serving": ["serving.example.com"]}'.
    allowed_hosts: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("*")
    @classmethod
    def _one_line_each(cls, value: object) -> object:
        # A line break in a value would start a line of its own in every file rendered from the
        # settings (supervisord.conf: a new [program:] section); no setting needs one.
        for where, text in _texts(value):
            char = line_breaker(text)
            if char is not None:
                what = unicodedata.name(char, "a control character")
                raise ValueError(
                    f"holds {what} (U+{ord(char):04X}) at position {text.index(char)}"
                    f"{f' of {where}' if where else ''}. A setting is one line of text: remove "
                    "the character (often a line break pasted with the value, or a quote left "
                    "open in .env)."
                )
        return value

    @model_validator(mode="after")
    def _loopback_unless_allowed(self) -> Settings:
        if self.remote_access and not self.allow_remote_access:
            raise ValueError(
                f"MLOPS_LAB_HOST={self.host} would let anyone who can reach this machine use "
                "MLflow, Prefect, serving and the alert receiver: they have no authentication. "
                f"Use MLOPS_LAB_HOST=127.0.0.1, or set {ENV_PREFIX}ALLOW_REMOTE_ACCESS=true if "
                "another layer (a container network, a firewall) protects them."
            )
        return self

    @property
    def remote_access(self) -> bool:
        """Whether the services listen beyond this machine's loopback interface."""
        if self.host == "localhost":
            return False
        try:
            return not ipaddress.ip_address(self.host).is_loopback
        except ValueError:  # a host name other than localhost may resolve to anything
            return True

    @classmethod
    def secret_env_names(cls) -> frozenset[str]:
        """Variables whose values are credentials (the SecretStr fields): passed on, never
        written or shown."""
        return frozenset(
            f"{ENV_PREFIX}{name.upper()}"
            for name, field in cls.model_fields.items()
            if field.annotation is SecretStr
        )

    def url(self, port: int, path: str = "") -> str:
        return f"http://{self.host}:{port}{path}"

    def peer_url(self, service: str, port: int, path: str = "") -> str:
        """How a process of the platform reaches `service` (see ``service_hosts``)."""
        return f"http://{self.service_hosts.get(service, self.host)}:{port}{path}"

    @property
    def mlflow_url(self) -> str:
        return self.peer_url("mlflow", self.mlflow_port)

    @property
    def prefect_api_url(self) -> str:
        return self.peer_url("prefect", self.prefect_port, "/api")

    @property
    def prediction_log_db_url(self) -> str:
        """The URL to connect with, password included: show it only through
        prediction_log.safe_url."""
        url = self.prediction_log_url.get_secret_value()
        return url or f"sqlite:///{self.paths.home / 'predictions.db'}"

    @property
    def prometheus_url(self) -> str:
        return self.peer_url("prometheus", self.prometheus_port)

    @property
    def alertmanager_url(self) -> str:
        return self.peer_url("alertmanager", self.alertmanager_port)

    @property
    def paths(self) -> DataPaths:
        return DataPaths(self.home)

    def to_env(self) -> dict[str, str]:
        """Environment for child processes: our settings plus the clients' own variables."""
        env = {
            f"{ENV_PREFIX}{name.upper()}": _env_value(value)
            for name, value in self.model_dump().items()
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
        env.update(telemetry.OFF)  # no telemetry from any service: platform_core.telemetry
        return env


def _env_value(value: object) -> str:
    if isinstance(value, SecretStr):  # the child needs the credential itself, not the stars
        return value.get_secret_value()
    return json.dumps(value) if isinstance(value, dict) else str(value)


# Set by the runtime for each process it starts: which service's own file applies.
SERVICE_VARIABLE = f"{ENV_PREFIX}SERVICE"


def _service_file() -> Path | None:
    """The configuration file of this process's service (``<data dir>/config/<service>.env``,
    written by :mod:`platform_core.overrides`), if the runtime named the service and it exists."""
    service = os.environ.get(SERVICE_VARIABLE)
    home = os.environ.get(f"{ENV_PREFIX}HOME")
    if not service or not home:
        return None
    path = Path(home) / "config" / f"{service}.env"
    return path if path.exists() else None


def _apply_service_file() -> Path | None:
    """Load this service's file into the environment (it wins); returns the file it read."""
    path = _service_file()
    if path is None:
        return None
    for key, value in dotenv_values(path).items():
        if value is not None:
            os.environ[key] = value
    return path


def get_settings() -> Settings:
    """Settings from the current environment (and ``.env``), and for a platform service also its
    own configuration file (see :mod:`platform_core.overrides`); invalid ones are a
    PlatformError."""
    applied = _apply_service_file()
    try:
        return Settings()
    except ValidationError as error:
        problems = []
        for problem in error.errors():
            message = problem["msg"].removeprefix("Value error, ")
            field = "_".join(map(str, problem["loc"])).upper()
            problems.append(f"{ENV_PREFIX}{field}: {message}" if field else message)
        where = f" (this service also read {applied})" if applied else ""
        raise PlatformError(
            f"Invalid settings{where}:\n" + "\n".join(problems),
            hint="Fix the MLOPS_LAB_* variables in your environment, in .env"
            + (f" or in {applied}." if applied else "."),
        ) from None
