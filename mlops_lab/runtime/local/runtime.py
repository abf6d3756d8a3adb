"""The embedded local runtime: every service as a real process under supervisord on 127.0.0.1."""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from mlops_lab.runtime import ports
from mlops_lab.runtime.base import (
    ProcessState,
    ServiceStatus,
    State,
    UpResult,
    tail,
)
from mlops_lab.runtime.local import strays, supervisor
from mlops_lab.runtime.local.strays import Stray
from mlops_lab.runtime.local.supervisor import Supervisor
from mlops_lab.runtime.local.supervisor_config import (
    ProgramSection,
    conf_text,
    recorded_settings,
    split_secrets,
)
from mlops_lab.runtime.selection import RuntimeName
from mlops_lab.runtime.services import SERVICES, Service, runnable
from platform_core import overrides
from platform_core.errors import PlatformError
from platform_core.locks import platform_locked
from platform_core.probe import Health, probe_all
from platform_core.settings import SERVICE_VARIABLE, Settings
from platform_core.waiting import TimedOut, poll

# Supervisor states after which waiting longer will not help.
_GAVE_UP = {"FATAL", "EXITED", "STOPPED", "UNKNOWN"}


@dataclass(frozen=True)
class Plan:
    """Everything `up` would write and pass on, computed before anything is written."""

    config: str  # supervisord.conf: no credential in it
    files: dict[Path, str]  # the services' rendered configs
    env: dict[str, str]  # supervisord's own environment, secrets included


# supervisord's process states, in the words every runtime shares.
_STATES = {
    "RUNNING": State.running,
    "STARTING": State.starting,
    "BACKOFF": State.starting,
    "STOPPING": State.stopped,
    "STOPPED": State.stopped,
    "EXITED": State.failed,
    "FATAL": State.failed,
}


class LocalRuntime:
    """The :class:`~mlops_lab.runtime.base.Runtime` of processes on this machine."""

    name = RuntimeName.local

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

    @platform_locked
    def up(self) -> UpResult:
        started_at = time.monotonic()
        self._require_programs()
        self.settings.paths.ensure()
        plan = self.plan()
        if self.supervisor.is_running():
            return self._resume(plan, started_at)

        self._refuse_strays()
        self._require_free_ports(self.services)
        self._write_files(plan.files)
        for service in self.services:
            service.prepare(self.settings, self.services)
        self.supervisor.write_config(plan.config)
        self.console.print(f"Starting supervisord (data dir {self.settings.home})")
        self.supervisor.start(plan.env)
        names = [s.name for s in self.services if not s.on_demand]
        self._wait_healthy(names)
        return UpResult(False, names, time.monotonic() - started_at)

    def _resume(self, plan: Plan, started_at: float) -> UpResult:
        """supervisord already runs: start only what is stopped; never change a running config."""
        self._refuse_changes(plan)
        info = self.supervisor.process_info()
        stopped = [
            s
            for s in self.services
            if not s.on_demand and info.get(s.name, {}).get("statename") != "RUNNING"
        ]
        self._require_free_ports(stopped)
        for service in stopped:
            service.prepare(self.settings, self.services)
            self.supervisor.start_process(service.name)
        self._wait_healthy([s.name for s in self.services if not s.on_demand])
        return UpResult(not stopped, [s.name for s in stopped], time.monotonic() - started_at)

    def plan(self) -> Plan:
        public, secret = split_secrets(self.settings.to_env(), Settings.secret_env_names())
        programs = []
        for service in self.services:
            env, hidden = split_secrets(service.env(self.settings))
            secret.update(hidden)
            # Which service this process is: it reads its own configuration file (overrides).
            env[SERVICE_VARIABLE] = service.name
            programs.append(
                ProgramSection(
                    service.name,
                    service.command(self.settings),
                    env,
                    service.priority,
                    autostart=not service.on_demand,
                )
            )
        files = {}
        for service in self.services:
            files.update(service.files(self.settings, self.services))
        config = conf_text(self.settings.paths, programs, public, secret)
        return Plan(config, files, {**public, **secret})

    def _refuse_changes(self, plan: Plan) -> None:
        """Raise, before anything is written, if the running platform would need other configs."""
        running = self.supervisor.running_config()
        stale = [path for path, text in plan.files.items() if _read(path) != text]
        if running == plan.config and not stale:
            return
        before, after = recorded_settings(running or ""), recorded_settings(plan.config)
        changed = sorted(
            key for key in before.keys() | after.keys() if before.get(key) != after.get(key)
        )
        if changed:
            what = f"changed: {', '.join(changed)}"
        else:
            what = "the commands or rendered configs changed"
        raise PlatformError(
            f"The platform is running with other settings than the current ones ({what}; see "
            f"{supervisor.conf_path(self.settings.paths)}). Nothing was changed.",
            hint="Run `mlops-lab down`, then `mlops-lab up` to apply the new settings.",
        )

    @staticmethod
    def _write_files(files: dict[Path, str]) -> None:
        for path, text in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

    def _require_programs(self) -> None:
        lines = []
        for service in self.services:
            if service.installed():
                continue
            assert service.program is not None, "a service without a program is always installed"
            lines.append(f"{service.title} is not installed. {service.program.install_hint()}")
        if lines:
            raise PlatformError(
                "\n".join(lines),
                hint="`make up` installs the Debian packages itself when run as root.",
            )

    def _refuse_strays(self) -> None:
        """A second supervisord beside the processes of a killed one would start nothing: each
        port is taken. Said as what it is, with the way out."""
        left = self.leftovers()
        if left:
            raise PlatformError(
                f"The platform's processes still run without their supervisord (was it killed?): "
                f"{_names(left)}. Nothing was started.",
                hint="`mlops-lab down` stops them; then `mlops-lab up`.",
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
            raise PlatformError("\n".join(conflicts), hint="Nothing was started.")

    # ---- health ---------------------------------------------------------------------------

    def _wait_healthy(self, names: list[str]) -> None:
        services = [s for s in self.services if s.name in names]
        t0 = time.monotonic()
        ready: dict[str, float] = {}
        failed: dict[str, str] = {}
        # A terminal gets one animated line per service; a log (CI, pipes) one line per event.
        progress = Progress(
            SpinnerColumn(finished_text=" "),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=self.console,
            disable=not self.console.is_terminal,
        )

        def settle(service: Service, line: str, suffix: str = "") -> None:
            progress.update(tasks[service.name], description=line, completed=1)
            if progress.disable:
                self.console.print(f"{line} {suffix}".rstrip(), highlight=False)

        def all_settled() -> bool:
            """One look at every pending service: settle those that are healthy or gave up."""
            info = self.supervisor.process_info()
            pending = [s for s in services if s.name not in ready and s.name not in failed]
            health = _probe_health(self.settings, pending)
            for service in pending:
                state = info.get(service.name, {}).get("statename", "UNKNOWN")
                if state == "RUNNING" and health[service.name].healthy:
                    ready[service.name] = time.monotonic() - t0
                    line = f"{service.title}: [green]✓ healthy[/]"
                    settle(service, line, f"in {ready[service.name]:.1f}s")
                elif state in _GAVE_UP:
                    failed[service.name] = f"process {state.lower()}"
                    settle(service, f"{service.title}: [red]✗ {failed[service.name]}[/]")
            return len(ready) + len(failed) == len(services)

        with progress:
            tasks = {s.name: progress.add_task(f"{s.title}: starting", total=1) for s in services}
            with contextlib.suppress(TimedOut):  # the services still pending are failed below
                poll(all_settled, self.settings.startup_timeout_s, tolerate=())
            for service in services:
                if service.name not in ready and service.name not in failed:
                    failed[service.name] = (
                        f"not healthy after {self.settings.startup_timeout_s:.0f}s "
                        f"({service.url(self.settings, service.health_path)})"
                    )
                    settle(service, f"{service.title}: [red]✗ {failed[service.name]}[/]")
        if failed:
            raise PlatformError(
                self._failure_report(failed), hint="Fix it, then run `mlops-lab up` again."
            )

    def _failure_report(self, failed: dict[str, str]) -> str:
        parts = []
        for name, reason in failed.items():
            log = self.settings.paths.log_file(name)
            parts.append(f"{name} did not become healthy: {reason}.\nLast lines of {log}:")
            parts.extend(f"    {line}" for line in tail(log, 20))
        return "\n".join(parts)

    # ---- down / status / clean ------------------------------------------------------------

    @platform_locked
    def down(self) -> bool:
        """Stop every process, keep all data. Returns whether anything was running."""
        stopped, survivors = self._stop_everything()
        if survivors:
            pids = " ".join(str(s.process.pid) for s in survivors)
            raise PlatformError(
                f"Still running after SIGKILL: {_names(survivors)}.",
                hint=f"`ps -o pid,stat,args -p {pids}` shows its state (D: waiting on a disk or "
                "a network mount, and it goes once that answers); then `mlops-lab down` again.",
            )
        return stopped

    def _stop_everything(self) -> tuple[bool, list[Stray]]:
        """supervisord stops its programs; then any process of the platform still running
        (supervisord was killed and left them) is stopped here. Returns whether anything was
        running, and what still runs."""
        running = self.supervisor.is_running()
        if running:
            self.supervisor.shutdown()
            # A server's workers may outlive the program they belong to by a moment.
            with contextlib.suppress(TimedOut):
                poll(lambda: not self.leftovers(), 5.0, every_s=0.2, tolerate=())
        left = self.leftovers()
        if not left:
            return running, []
        count = f"{len(left)} process{'es' if len(left) > 1 else ''}"
        self.console.print(
            f"Stopping {count} of the platform that no supervisord keeps: {_names(left)}",
            highlight=False,
        )
        return True, strays.stop(left)

    def _stop_program(self, name: str) -> None:
        """supervisord's stop, then whatever of the program outlived it. supervisord signals the
        program's process group; a server's workers in sessions of their own (BentoML's circus
        calls setsid for each) are beyond it, and when the server is killed at the end of the
        stop timeout they go on running, holding its port: the program started next cannot
        bind it, while they still answer as the service."""
        self.supervisor.stop_process(name)
        left = [stray for stray in self.leftovers() if stray.name == name]
        if left:
            strays.stop(left)

    def leftovers(self) -> list[Stray]:
        """The platform's processes that run outside a supervisord (see :mod:`.strays`)."""
        return strays.find(
            self.settings.home,
            supervisor.conf_path(self.settings.paths),
            {service.port(self.settings) for service in self.declared},
        )

    def status(self) -> list[ServiceStatus]:
        running = self.supervisor.is_running()
        info = self.supervisor.process_info() if running else {}
        health = _probe_health(self.settings, self.services)
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
            if service.on_demand and state in ("STOPPED", "EXITED"):
                rows.append(
                    ServiceStatus(
                        service.name, service.title, url, "on demand", False, "a lab starts it"
                    )
                )
                continue
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

    @platform_locked
    def clean(self) -> bool:
        """Stop everything and delete the data dir. Returns whether there was anything to delete."""
        home = self.settings.home
        self._stop_everything()
        if not home.exists():
            return False
        if not self.settings.paths.marker.exists() and any(home.iterdir()):
            raise PlatformError(
                f"{home} does not look like an mlops-lab data dir (no "
                f"{self.settings.paths.marker.name}"
                " marker), so it was not deleted.",
                hint="Check MLOPS_LAB_HOME.",
            )
        # Deleted under a running process, a database or a TSDB goes on writing into files that
        # are gone, and the next `up` meets it on its port.
        left = self.leftovers()
        if left:
            pids = " ".join(str(s.process.pid) for s in left)
            raise PlatformError(
                f"Still running after the platform was stopped: {_names(left)}; so {home} was "
                "not deleted.",
                hint=f"Stop it (`kill -9 {pids}`), then run `mlops-lab clean` again.",
            )
        shutil.rmtree(home)
        return True

    # ---- one service at a time (labs, `mlops-lab restart`) ---------------------------------

    def service(self, name: str) -> Service:
        for service in self.services:
            if service.name == name:
                return service
        known = ", ".join(s.name for s in self.services)
        raise PlatformError(f"No service named {name!r}.", hint=f"Known: {known}.")

    @platform_locked
    def restart(self, name: str, wait: bool = True) -> str:
        """Render the service's configuration from the settings again and apply it: a reload
        where the service supports one and runs, else a restart. Returns which it was."""
        service = self.service(name)
        self._write_files(service.files(self.settings, self.services))
        service.prepare(self.settings, self.services)
        running = self.supervisor.process_info().get(name, {}).get("statename") == "RUNNING"
        if service.reload_signal and running:
            self.supervisor.signal_process(name, service.reload_signal)
            return "reloaded"
        self._stop_program(name)
        self.supervisor.start_process(name)
        if wait:
            self._wait_healthy([name])
        return "restarted"

    @platform_locked
    def start_on_demand(self, name: str) -> None:
        if self.supervisor.process_info().get(name, {}).get("statename") != "RUNNING":
            self.supervisor.start_process(name)
            self._wait_healthy([name])

    @platform_locked
    def stop_on_demand(self, name: str) -> None:
        if self.supervisor.is_running():
            self._stop_program(name)

    @platform_locked
    def stop(self, name: str) -> None:
        self._stop_program(self.service(name).name)

    @platform_locked
    def start(self, name: str) -> None:
        self.supervisor.start_process(self.service(name).name)

    def is_running(self) -> bool:
        return self.supervisor.is_running()

    def processes(self) -> dict[str, ProcessState]:
        if not self.supervisor.is_running():
            return {}
        return {name: _process_state(info) for name, info in self.supervisor.process_info().items()}

    def reconnect(self) -> bool:
        return False  # the host reaches every service directly: nothing to re-establish

    # ---- the two ways a lab changes the platform ------------------------------------------

    @platform_locked
    def set_override(self, name: str, values: Mapping[str, str], wait: bool = True) -> None:
        """``config/<service>.env``, which the service reads when it starts, then a restart."""
        service = self.service(name)
        overrides.write(self.settings, service.name, dict(values))
        self._stop_program(service.name)
        self.supervisor.start_process(service.name)
        if wait:
            self._wait_healthy([service.name])

    def clear_overrides(self) -> list[str]:
        cleared = overrides.clear(self.settings)
        # Restarted where supervisord runs the service (in whatever state) and this runtime
        # knows it; the file alone is enough for the others, which read it when they start.
        programs = set(self.processes()) & {s.name for s in self.services}
        for name in cleared:
            if name in programs:
                self.restart(name)
        return cleared

    def reload(self, name: str) -> None:
        """The service's reload signal (SIGHUP for Prometheus and Alertmanager)."""
        service = self.service(name)
        if not service.reload_signal:
            raise PlatformError(
                f"{name} has no reload signal.", hint=f"`mlops-lab restart {name}` applies it."
            )
        self.supervisor.signal_process(service.name, service.reload_signal)

    def log_tail(self, name: str, lines: int) -> list[str]:
        return tail(self.log_path(name), lines)

    def monitoring_installed(self) -> bool:
        """Whether this platform has a Prometheus (a test platform may run without one)."""
        return any(s.name == "prometheus" for s in self.services)

    def prediction_log_url(self) -> str:
        return self.settings.prediction_log_db_url

    def restore_configs(self) -> list[str]:
        """Services whose rendered configuration differs from what the settings render (edited
        by hand, or by a lab): rendered again and restarted. Returns their names."""
        restored = []
        for service in self.services:
            files = service.files(self.settings, self.services)
            if any(_read(path) != text for path, text in files.items()):
                self.restart(service.name)
                restored.append(service.name)
        return restored

    def log_path(self, name: str) -> Path:
        known = {s.name for s in self.declared} | {"supervisord"}
        if name not in known:
            raise PlatformError(
                f"No service named {name!r}.", hint=f"Known: {', '.join(sorted(known))}."
            )
        return self.settings.paths.log_file(name)


def _names(processes: Sequence[Stray]) -> str:
    return ", ".join(process.describe() for process in processes)


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


def _probe_health(settings: Settings, services: Sequence[Service]) -> dict[str, Health]:
    """Each service's health check, logged in where the service asks for it."""
    return probe_all(
        {s.name: s.url(settings, s.health_path) for s in services},
        auth={s.name: s.auth(settings) for s in services},
    )


def _process_state(info: Mapping) -> ProcessState:
    """One supervisord ``getProcessInfo`` answer as the neutral type."""
    statename = str(info.get("statename", "UNKNOWN"))
    return ProcessState(
        name=str(info["name"]),
        state=_STATES.get(statename, State.unknown),
        description=str(info.get("description") or statename),
        started_at=float(info["start"]) if info.get("start") else None,
        pid=int(info["pid"]) if info.get("pid") else None,
    )
