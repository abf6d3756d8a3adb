"""The layout of the data dir (``.lab/`` by default, ``MLOPS_LAB_HOME``): the one place that knows
where each service keeps its state, logs, configuration and secrets inside it."""

from __future__ import annotations

from pathlib import Path

# Names on disk an earlier release used (the front end was "client-app"), and each one's name now.
# Found in a data dir, a file is moved once, so no learner's state is stranded by a rename.
_RENAMED = {
    "config/client-app.yaml": "config/front-end.yaml",
    "logs/client-app.log": "logs/front-end.log",
}


class DataPaths:
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
    def config(self) -> Path:
        """Per-service configuration files an operator (or a lab) changes: see core.overrides."""
        return self.home / "config"

    @property
    def secrets(self) -> Path:
        return self.home / "secrets"

    @property
    def grafana_admin_password(self) -> Path:
        return self.secrets / "grafana-admin-password"

    @property
    def marker(self) -> Path:
        """Proves a directory is ours before `clean` deletes it."""
        return self.home / ".mlops-lab"

    @property
    def prediction_log_dead_letter(self) -> Path:
        """Rows the prediction log refused, one JSON line each with the database's error."""
        return self.logs / "prediction-log-dead-letter.jsonl"

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
            self.config,
        ):
            path.mkdir(parents=True, exist_ok=True)
        self.marker.touch(exist_ok=True)

    def carry_over_old_names(self) -> list[tuple[Path, Path]]:
        """Move files an earlier release named otherwise to their names now; returns the moves."""
        moved = []
        for old, new in _RENAMED.items():
            source, target = self.home / old, self.home / new
            if source.exists() and not target.exists():
                source.rename(target)
                moved.append((source, target))
        return moved
