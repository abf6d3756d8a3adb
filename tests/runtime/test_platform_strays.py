"""The platform's processes without their supervisord (killed: `kill -9`, the OOM killer): `up`
says so rather than fail on its ports, `down` finds them and stops them, `clean` deletes nothing
under one that still runs; and a process that only works in the data dir is none of them.

A one-service platform under a real supervisord stands for the whole one: its service serves on
one platform port and starts a child serving on another, as MLflow and Prefect run their servers
as children."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from mlops_lab.runtime import ports
from mlops_lab.runtime.local import strays, supervisor
from mlops_lab.runtime.local.runtime import LocalRuntime
from mlops_lab.runtime.services import Service
from platform_core.errors import PlatformError
from platform_core.settings import ENV_PREFIX, SERVICE_VARIABLE, Settings
from tests.support import make_settings, remove_platform_files, run_cli, wait_for

# One line: supervisord.conf takes no line break in a command.
_SERVER_WITH_A_CHILD = (
    "import http.server, subprocess, sys; host, port, child_port = sys.argv[1:]; "
    "subprocess.Popen([sys.executable, '-m', 'http.server', '--bind', host, child_port]); "
    "http.server.ThreadingHTTPServer("
    "(host, int(port)), http.server.SimpleHTTPRequestHandler).serve_forever()"
)


def _two_servers(name: str, title: str, script: str) -> Service:
    """A service serving on MLflow's port, its child on Prefect's."""
    return Service(
        name=name,
        title=title,
        port_setting="mlflow_port",
        health_path="/",
        command=lambda s: [
            sys.executable,
            "-c",
            script,
            s.host,
            str(s.mlflow_port),
            str(s.prefect_port),
        ],
    )


SERVICE = _two_servers("two-servers", "Two servers", _SERVER_WITH_A_CHILD)


@dataclass(frozen=True)
class Orphaned:
    settings: Settings
    processes: list[psutil.Process]  # the service and its child

    @property
    def ports(self) -> list[int]:
        return [self.settings.mlflow_port, self.settings.prefect_port]


@pytest.fixture
def orphaned() -> Iterator[Orphaned]:
    """The platform, its supervisord killed once both servers listen."""
    settings = make_settings()
    runtime = LocalRuntime(settings, services=[SERVICE])
    started: list[psutil.Process] = []
    try:
        runtime.up()
        wait_for(
            lambda: not ports.is_free(settings.host, settings.prefect_port), 30, what="the child"
        )
        supervisord = psutil.Process(runtime.supervisor.pid())
        started += [supervisord, *supervisord.children(recursive=True)]
        supervisord.kill()
        wait_for(lambda: not strays.running(supervisord), 30, what="supervisord to die")
        yield Orphaned(settings, started[1:])
    finally:
        for process in started:
            if strays.running(process):
                process.kill()
        remove_platform_files(settings)


@pytest.mark.platform
def test_up_after_supervisord_was_killed_names_its_processes_and_down(orphaned: Orphaned) -> None:
    result = run_cli(orphaned.settings, "up")
    said = " ".join(result.stderr.split())
    assert result.returncode == 1
    assert "still run without their supervisord" in said
    for process in orphaned.processes:
        assert f"two-servers (pid {process.pid})" in said
    assert "`mlops-lab down` stops them" in said


@pytest.mark.platform
def test_down_after_supervisord_was_killed_stops_its_processes_and_frees_the_ports(
    orphaned: Orphaned,
) -> None:
    result = run_cli(orphaned.settings, "down")
    said = " ".join(result.stderr.split())
    assert result.returncode == 0, result.stderr
    for process in orphaned.processes:
        assert f"two-servers (pid {process.pid})" in said
    assert "Platform stopped" in said
    assert not [p.pid for p in orphaned.processes if strays.running(p)]
    assert all(ports.is_free(orphaned.settings.host, port) for port in orphaned.ports)


@pytest.fixture
def platform_process(unstarted_settings: Settings) -> Iterator[subprocess.Popen[bytes]]:
    """A process as supervisord would have started MLflow in this data dir, on MLflow's port."""
    settings = unstarted_settings
    settings.paths.ensure()
    env = {**os.environ, SERVICE_VARIABLE: "mlflow", f"{ENV_PREFIX}HOME": str(settings.home)}
    port = str(settings.mlflow_port)
    process = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", settings.host, port],
        cwd=settings.home,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        process.kill()
        process.wait()


@pytest.fixture
def unkillable(
    platform_process: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> subprocess.Popen[bytes]:
    """That process, surviving SIGKILL as one in uninterruptible sleep (a hung disk or NFS mount)
    does."""
    monkeypatch.setattr(strays, "stop", lambda found, grace_s=10.0: list(found))
    return platform_process


def test_clean_deletes_nothing_while_a_platform_process_still_runs(
    unstarted_settings: Settings, unkillable: subprocess.Popen[bytes]
) -> None:
    with pytest.raises(PlatformError) as raised:
        LocalRuntime(unstarted_settings).clean()
    message = str(raised.value)
    assert f"mlflow (pid {unkillable.pid})" in message
    assert f"{unstarted_settings.home} was not deleted" in " ".join(message.split())
    assert f"kill -9 {unkillable.pid}" in message
    assert unstarted_settings.paths.marker.exists()


def test_down_names_a_platform_process_that_does_not_stop(
    unstarted_settings: Settings, unkillable: subprocess.Popen[bytes]
) -> None:
    with pytest.raises(PlatformError) as raised:
        LocalRuntime(unstarted_settings).down()
    assert f"Still running after SIGKILL: mlflow (pid {unkillable.pid})" in str(raised.value)


def test_down_stops_a_supervisord_that_no_longer_answers(
    unstarted_settings: Settings, tmp_path: Path
) -> None:
    # Its socket gone (deleted, or a second supervisord started on the same path): only its
    # command line still says whose it is.
    program = tmp_path / "supervisord"
    program.write_text("import time; time.sleep(60)\n")
    conf = supervisor.conf_path(unstarted_settings.paths)
    hung = subprocess.Popen([sys.executable, str(program), "-c", str(conf)])
    try:
        assert LocalRuntime(unstarted_settings).down() is True
        assert hung.wait(timeout=30) == -signal.SIGTERM
    finally:
        hung.kill()
        hung.wait()


def test_down_leaves_alone_a_process_that_only_works_in_the_data_dir(
    unstarted_settings: Settings,
) -> None:
    # A learner's shell in the data dir, the platform's settings in its environment.
    env = {k: v for k, v in os.environ.items() if k != SERVICE_VARIABLE}
    env[f"{ENV_PREFIX}HOME"] = str(unstarted_settings.home)
    shell = subprocess.Popen(["sleep", "60"], cwd=unstarted_settings.home, env=env)
    try:
        assert LocalRuntime(unstarted_settings).down() is False
        assert shell.poll() is None
    finally:
        shell.kill()
        shell.wait()


# A server whose worker runs in a session of its own, as BentoML's circus workers do (circus calls
# setsid), so supervisord's signal to the program's process group misses it; killed at the end
# of supervisord's stop timeout, the arbiter leaves it running, holding the port.
_SERVER_WITH_A_SESSION_OF_ITS_OWN = _SERVER_WITH_A_CHILD.replace(
    "child_port])", "child_port], start_new_session=True)"
)
DETACHED = _two_servers(
    "detached-worker",
    "A server with a worker in its own session",
    _SERVER_WITH_A_SESSION_OF_ITS_OWN,
)


@pytest.mark.platform
def test_a_restart_leaves_nothing_of_the_program_it_stopped() -> None:
    """Lab 05's check once found serving ready, answering and scraped after its solve, yet never
    up 10 s in a row: supervisord's serving kept failing to start while something else answered
    on its port. A worker an earlier stop left behind does exactly that. A restart, the restart
    that applies a lab's override and a stop now end what outlived the program."""
    settings = make_settings()
    runtime = LocalRuntime(settings, services=[DETACHED])
    worker: psutil.Process | None = None
    try:
        runtime.up()
        wait_for(
            lambda: not ports.is_free(settings.host, settings.prefect_port), 30, what="the worker"
        )
        program = psutil.Process(runtime.supervisor.process_info()[DETACHED.name]["pid"])
        (worker,) = program.children()
        assert os.getsid(worker.pid) != os.getsid(program.pid)
        runtime.restart(DETACHED.name)
        assert not strays.running(worker)
        # The new program's worker has the port.
        wait_for(
            lambda: not ports.is_free(settings.host, settings.prefect_port), 30, what="its worker"
        )
        program = psutil.Process(runtime.supervisor.process_info()[DETACHED.name]["pid"])
        (worker,) = program.children()
        runtime.set_override(DETACHED.name, {"MLOPS_LAB_MAX_BATCH_RECORDS": "7"})
        assert not strays.running(worker)
    finally:
        runtime.down()
        if worker is not None and strays.running(worker):
            worker.kill()
        remove_platform_files(settings)
