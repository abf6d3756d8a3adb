"""What `up`, `clean` and runtime selection do when something is wrong."""

from __future__ import annotations

import itertools
import shutil
import socket
import sys

import psutil
import pytest

from mlops_lab.runtime import ports
from mlops_lab.runtime.local import supervisor
from mlops_lab.runtime.local.runtime import LocalRuntime
from mlops_lab.runtime.selection import RuntimeName, choose
from mlops_lab.runtime.services import SERVICES, Service
from platform_core.errors import PlatformError
from platform_core.settings import Settings
from tests.support import free_ports, make_settings, remove_platform_files, run_cli, worker_ports

PORT_SETTINGS = [s.port_setting for s in SERVICES]


def test_port_in_use_fails_before_starting_anything() -> None:
    settings = make_settings()
    blocker = socket.socket()
    blocker.bind((settings.host, settings.mlflow_port))
    blocker.listen()
    try:
        result = run_cli(settings, "up")
    finally:
        blocker.close()
        remove_platform_files(settings)
    assert result.returncode == 1
    message = result.stderr
    assert f"Port {settings.mlflow_port} (MLflow)" in message
    assert f"(pid {psutil.Process().pid})" in message
    assert "MLOPS_LAB_MLFLOW_PORT" in message
    assert "Nothing was started" in message
    assert not supervisor.socket_path(settings.paths).exists()
    others = [getattr(settings, name) for name in PORT_SETTINGS if name != "mlflow_port"]
    assert all(ports.is_free(settings.host, port) for port in others)


def _fake_service(name: str, script: str) -> Service:
    return Service(
        name=name,
        title=name.title(),
        port_setting="flows_port",
        health_path="/health",
        command=lambda _s: [sys.executable, "-c", script],
    )


# Starts supervisord and a service (a broken one): not in `make test-fast`.
@pytest.mark.platform
@pytest.mark.parametrize(
    ("script", "reason", "timeout_s"),
    [
        (
            "import sys; print('cannot open database: disk full', flush=True); sys.exit(3)",
            "process fatal",
            60.0,  # supervisord retries three times before it gives up
        ),
        (
            "import time; print('bound to the wrong port', flush=True); time.sleep(600)",
            "not healthy after 6s",
            6.0,
        ),
    ],
    ids=["crashes", "never-answers"],
)
def test_service_that_does_not_become_healthy_is_named_with_its_log(
    script: str, reason: str, timeout_s: float
) -> None:
    settings = make_settings(startup_timeout_s=timeout_s)
    runtime = LocalRuntime(settings, services=[_fake_service("broken", script)])
    try:
        with pytest.raises(PlatformError) as raised:
            runtime.up()
    finally:
        runtime.down()
        remove_platform_files(settings)
    message = str(raised.value)
    assert "broken did not become healthy" in message
    assert reason in message
    assert ("disk full" in message) or ("wrong port" in message)


@pytest.mark.skipif(
    all(shutil.which(tool) for tool in ("kind", "terraform")),
    reason="kind and terraform are installed here, so the kind runtime would really start",
)
def test_kind_runtime_without_its_tools_names_them_and_what_to_do(
    unstarted_settings: Settings,
) -> None:
    settings = unstarted_settings
    result = run_cli(settings, "up", "--runtime", "kind")
    assert result.returncode == 1
    assert "is not installed" in result.stderr
    assert "--runtime local" in result.stderr
    assert not supervisor.socket_path(settings.paths).exists()


def test_auto_runtime_falls_back_to_local_and_says_why() -> None:
    choice = choose(RuntimeName.auto)
    assert choice.runtime is RuntimeName.local
    assert choice.reason


def test_clean_without_confirmation_deletes_nothing(unstarted_settings: Settings) -> None:
    settings = unstarted_settings
    settings.paths.ensure()
    result = run_cli(settings, "clean")  # stdin is empty: the prompt cannot be answered
    assert result.returncode != 0
    assert settings.paths.marker.exists()


def test_clean_with_yes_deletes_the_data_dir(unstarted_settings: Settings) -> None:
    settings = unstarted_settings
    settings.paths.ensure()
    result = run_cli(settings, "clean", "--yes")
    assert result.returncode == 0, result.stderr
    assert not settings.home.exists()


def test_clean_refuses_a_dir_that_is_not_a_lab_data_dir(unstarted_settings: Settings) -> None:
    settings = unstarted_settings
    (settings.home / "thesis.tex").write_text("precious")
    result = run_cli(settings, "clean", "--yes")
    assert result.returncode == 1
    assert "does not look like an mlops-lab data dir" in result.stderr
    assert (settings.home / "thesis.tex").exists()


def test_spare_ports_stay_out_of_the_range_outgoing_connections_take_theirs_from() -> None:
    # A test platform's services bind their ports tens of seconds after the ports were chosen:
    # chosen in the ephemeral range, one was taken meanwhile by a client's outgoing connection
    # and the flows service died with "Address already in use".
    ephemeral = ports.ephemeral_ports()
    picked = [*free_ports(40), ports.free_port()]
    assert not [port for port in picked if port in ephemeral]
    assert len(set(picked[:40])) == 40
    # Workers pick from slices of their own, so two platforms starting together never meet.
    slices = [worker_ports(f"gw{n}") for n in range(4)] + [worker_ports("")]
    for one, other in itertools.combinations(slices, 2):
        assert not set(one) & set(other)


def test_too_few_spare_ports_is_an_error_naming_the_range() -> None:
    (taken,) = ports.spare_ports(1)
    assert ports.spare_ports(1, within=range(taken, taken + 1)) == [taken]
    with socket.socket() as held:
        held.bind(("127.0.0.1", taken))
        with pytest.raises(PlatformError, match=f"{taken}-{taken}"):
            ports.spare_ports(1, within=range(taken, taken + 1))
