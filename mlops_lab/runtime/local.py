"""The embedded local runtime: every service as a real process under supervisord on 127.0.0.1."""

from __future__ import annotations

import shutil
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

from mlops_lab.core.errors import LabError
from mlops_lab.core.probe import probe_all
from mlops_lab.core.settings import Settings
from mlops_lab.runtime import ports
from mlops_lab.runtime.catalog import SERVICES, Service, runnable
from mlops_lab.runtime.supervisor import ProgramSection, Supervisor

# Supervisor states after which waiting longer will not help.
_GAVE_UP = {"FATAL", "EXITED", "STOPPED", "UNKNOWN"}
_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    title: str
    url: str
    state: str
    healthy: bool
    detail: str
    pid: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class UpResult:
    already_running: bool
    started: list[str]
    seconds: float


class LocalRuntime:
    def __init__(
        self,
        settings: Settings,
        services: Sequence[Service] = SERVICES,
        console: Console | None = None,
    ) -> None:
        self.settings = settings
        self.declared = list(services)
        self.services = runnable(services)
        self.supervisor = Supervisor(settings.paths)
        self.console = console or Console(stderr=True)

    # ---- up -------------------------------------------------------------------------------

    def up(self) -> UpResult:
        started_at = time.monotonic()
        self._require_programs()
        self.settings.paths.ensure()
        if self.supervisor.is_running():
            return self._resume(started_at)

        self._require_free_ports(self.services)
        for service in self.services:
            service.prepare(self.settings, self.services)
        self.supervisor.write_config(self._config_text())
        self.console.print(f"Starting supervisord (data dir {self.settings.home})")
        self.supervisor.start(self.settings.to_env())
        self._wait_healthy([s.name for s in self.services])
        return UpResult(False, [s.name for s in self.services], time.monotonic() - started_at)

    def _resume(self, started_at: float) -> UpResult:
        """supervisord already runs: start only what is stopped; never change a running config."""
        for service in self.services:
            service.prepare(self.settings, self.services)
        if self.supervisor.running_config_differs(self._config_text()):
            raise LabError(
                "The platform is running with other settings than the current ones "
                f"(see {self.settings.paths.supervisor_conf}).",
                hint="Run `mlops-lab down`, then `mlops-lab up` to apply the new settings.",
            )
        info = self.supervisor.process_info()
        stopped = [s for s in self.services if info.get(s.name, {}).get("statename") != "RUNNING"]
        self._require_free_ports(stopped)
        for service in stopped:
            self.supervisor.start_process(service.name)
        self._wait_healthy([s.name for s in self.services])
        return UpResult(not stopped, [s.name for s in stopped], time.monotonic() - started_at)

    def _programs(self) -> list[ProgramSection]:
        return [
            ProgramSection(s.name, s.command(self.settings), s.env(self.settings), s.priority)
            for s in self.services
        ]

    def _config_text(self) -> str:
        return self.supervisor.config_text(self._programs(), self.settings.to_env())

    def _require_programs(self) -> None:
        missing = [s for s in self.services if not s.installed()]
        if missing:
            lines = [f"{s.title} is not installed. {s.program.install_hint()}" for s in missing]
            raise LabError(
                "\n".join(lines),
                hint="`make up` installs the Debian packages itself when run as root.",
            )

    def _require_free_ports(self, services: Sequence[Service]) -> None:
        conflicts = []
        for service in services:
            port = service.port(self.settings)
            if not ports.is_free(self.settings.host, port):
                holder = ports.owner(port).describe()
                conflicts.append(
                    f"Port {port} ({service.title}) on {self.settings.host} is in use by {holder}."
                    f" Stop it, or choose another port: {service.env_var()}=<port>"
                )
        if conflicts:
            raise LabError("\n".join(conflicts), hint="Nothing was started.")

    # ---- health ---------------------------------------------------------------------------

    def _wait_healthy(self, names: list[str]) -> None:
        services = [s for s in self.services if s.name in names]
        deadline = time.monotonic() + self.settings.startup_timeout_s
        t0 = time.monotonic()
        ready: dict[str, float] = {}
        failed: dict[str, str] = {}

        def render() -> Table:
            return self._progress_table(services, ready, failed, time.monotonic() - t0)

        # A terminal gets a live table; a log (CI, pipes) gets one line per event.
        live = (
            Live(render(), console=self.console, refresh_per_second=4)
            if self.console.is_terminal
            else None
        )
        if live:
            live.start()
        try:
            while len(ready) + len(failed) < len(services) and time.monotonic() < deadline:
                info = self.supervisor.process_info()
                pending = [s for s in services if s.name not in ready and s.name not in failed]
                health = probe_all({s.name: s.url(self.settings, s.health_path) for s in pending})
                for service in pending:
                    state = info.get(service.name, {}).get("statename", "UNKNOWN")
                    if state == "RUNNING" and health[service.name].healthy:
                        ready[service.name] = time.monotonic() - t0
                    elif state in _GAVE_UP:
                        failed[service.name] = f"process {state.lower()}"
                    else:
                        continue
                    if not live:
                        self.console.print(self._status_line(service, ready, failed, 0))
                if live:
                    live.update(render())
                if len(ready) + len(failed) < len(services):
                    time.sleep(0.5)
        finally:
            if live:
                live.stop()
        for service in services:
            if service.name not in ready and service.name not in failed:
                failed[service.name] = (
                    f"not healthy after {self.settings.startup_timeout_s:.0f}s "
                    f"({service.url(self.settings, service.health_path)})"
                )
        if failed:
            raise LabError(
                self._failure_report(failed), hint="Fix it, then run `mlops-lab up` again."
            )

    def _progress_table(self, services, ready, failed, elapsed: float) -> Table:
        table = Table.grid()
        for service in services:
            table.add_row(self._status_line(service, ready, failed, elapsed))
        return table

    @staticmethod
    def _status_line(service: Service, ready, failed, elapsed: float) -> str:
        if service.name in ready:
            return f"{service.title}: [green]✓ healthy[/] in {ready[service.name]:.1f}s"
        if service.name in failed:
            return f"{service.title}: [red]✗ {failed[service.name]}[/]"
        spinner = _SPINNER[int(elapsed * 4) % len(_SPINNER)]
        return f"{service.title}: [yellow]{spinner} starting[/] {elapsed:.0f}s"

    def _failure_report(self, failed: dict[str, str]) -> str:
        parts = []
        for name, reason in failed.items():
            log = self.settings.paths.log_file(name)
            parts.append(f"{name} did not become healthy: {reason}.\nLast lines of {log}:")
            parts.extend(f"    {line}" for line in tail(log, 20))
        return "\n".join(parts)

    # ---- down / status / clean ------------------------------------------------------------

    def down(self) -> bool:
        """Stop every process, keep all data. Returns whether anything was running."""
        if not self.supervisor.is_running():
            return False
        self.supervisor.shutdown()
        return True

    def status(self) -> list[ServiceStatus]:
        running = self.supervisor.is_running()
        info = self.supervisor.process_info() if running else {}
        health = probe_all({s.name: s.url(self.settings, s.health_path) for s in self.services})
        rows = []
        for service in self.declared:
            url = service.url(self.settings)
            if service not in self.services:
                hint = service.program.install_hint() if service.program else ""
                rows.append(
                    ServiceStatus(
                        service.name,
                        service.title,
                        url,
                        "not installed",
                        False,
                        f"optional; to install: {hint}",
                    )
                )
                continue
            proc = info.get(service.name, {})
            state = proc.get("statename", "STOPPED" if running else "not running")
            probe = health[service.name]
            rows.append(
                ServiceStatus(
                    service.name,
                    service.title,
                    url,
                    state,
                    probe.healthy and state == "RUNNING",
                    probe.detail,
                    proc.get("pid") or None,
                )
            )
        return rows

    def clean(self) -> bool:
        """Stop everything and delete the data dir. Returns whether there was anything to delete."""
        home = self.settings.home
        self.down()
        if not home.exists():
            return False
        if not self.settings.paths.marker.exists() and any(home.iterdir()):
            raise LabError(
                f"{home} does not look like an mlops-lab data dir (no "
                f"{self.settings.paths.marker.name}"
                " marker), so it was not deleted.",
                hint="Check MLOPS_LAB_HOME.",
            )
        shutil.rmtree(home)
        return True

    def log_path(self, name: str) -> Path:
        known = {s.name for s in self.declared} | {"supervisord"}
        if name not in known:
            raise LabError(
                f"No service named {name!r}.", hint=f"Known: {', '.join(sorted(known))}."
            )
        return self.settings.paths.log_file(name)


def tail(path: Path, lines: int) -> list[str]:
    if not path.exists():
        return [f"(no log yet at {path})"]
    with path.open(errors="replace") as handle:
        return [line.rstrip("\n") for line in deque(handle, maxlen=lines)]
