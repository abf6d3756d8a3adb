"""The layout of the data dir (``.lab/`` by default, ``MLOPS_LAB_HOME``): the one place that knows
where each service keeps its state, logs, configuration and secrets inside it."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

# Names on disk an earlier release used (the front end was "client-app"), and each one's name now.
# Found in a data dir, a file is moved once, so no learner's state is stranded by a rename.
_RENAMED = {
    "config/client-app.yaml": "config/front-end.yaml",
    "logs/client-app.log": "logs/front-end.log",
}


def private_dir(path: Path) -> Path:
    """``path`` as a directory only its owner can enter (0700), created so or tightened.

    The data dir holds credentials (Grafana's password, Terraform states with a cluster's admin
    key, a kubeconfig) and what every service stores: the umask's 0755 would let any local user
    read them. A directory someone else owns (a volume a pod mounts) is left as it is."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
        path.chmod(0o700)
    return path


def private_file(path: Path, text: str) -> Path:
    """Replace ``path`` with ``text`` in a file only its owner can read (0600, as ``mkstemp``
    makes it), whole or not at all: a reader never sees it half written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


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
    def mlflow_store(self) -> Path:
        """MLflow's runs and registry, in SQLite (its `--backend-store-uri` on this machine)."""
        return self.mlflow / "mlflow.db"

    @property
    def backups(self) -> Path:
        """Copies of the platform's stores (`mlops-lab backup mlflow`): kept beside the data they
        copy, so `make clean` takes them too; copy them off the machine to survive a lost disk."""
        return self.home / "backups"

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
    def team_rules(self) -> Path:
        """Prometheus rules the platform's users own (``*.yml``, one file per team): loaded beside
        the platform's, never rendered over (see monitoring.team_rules)."""
        return self.config / "rules"

    @property
    def secrets(self) -> Path:
        return self.home / "secrets"

    @property
    def grafana_admin_password(self) -> Path:
        return self.secrets / "grafana-admin-password"

    @property
    def monitoring_password(self) -> Path:
        """The password Prometheus and Alertmanager ask for (platform_core.monitoring_auth)."""
        return self.secrets / "monitoring-password"

    @property
    def monitoring_password_hash(self) -> Path:
        """Its bcrypt hash, kept so that every rendering of their web config is the same."""
        return self.secrets / "monitoring-password.bcrypt"

    @property
    def marker(self) -> Path:
        """Proves a directory is ours before `clean` deletes it."""
        return self.home / ".mlops-lab"

    @property
    def outcomes_ledger(self) -> Path:
        """The loan front end's outcomes ledger: every outcome it learned, one JSON line each, and
        the prediction it reported it for (mlops_lab.front_end.outcomes)."""
        return self.home / "front-end" / "outcomes.jsonl"

    @property
    def prediction_log_dead_letter(self) -> Path:
        """Rows the prediction log refused, one JSON line each with the database's error."""
        return self.logs / "prediction-log-dead-letter.jsonl"

    def log_file(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    def ensure(self) -> None:
        private_dir(self.home)
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
