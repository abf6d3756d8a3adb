"""Nothing is exposed by accident: loopback unless the learner says otherwise, a private
supervisor socket, credentials kept out of the supervisor config, and the Grafana admin
password shown once."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
from pydantic import ValidationError

from mlops_lab.cli.platform import grafana_login
from mlops_lab.runtime.local import supervisor
from mlops_lab.runtime.local.runtime import LocalRuntime
from mlops_lab.runtime.services import Service
from platform_core.errors import PlatformError
from platform_core.paths import DataPaths
from platform_core.settings import Settings, get_settings
from tests.support import (
    CLI,
    env_for,
    make_settings,
    remove_platform_files,
    settings_without_dotenv,
)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1"])
def test_loopback_hosts_are_accepted(host: str) -> None:
    assert settings_without_dotenv(host=host).host == host


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "lab.example"])
def test_non_loopback_host_is_refused_without_explicit_allow(host: str) -> None:
    with pytest.raises(ValidationError, match="MLOPS_LAB_ALLOW_REMOTE_ACCESS=true"):
        settings_without_dotenv(host=host)
    allowed = settings_without_dotenv(host=host, allow_remote_access=True)
    assert allowed.host == host


def test_refused_host_is_a_lab_error_naming_problem_and_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLOPS_LAB_HOST", "0.0.0.0")
    with pytest.raises(PlatformError) as raised:
        get_settings()
    assert "no authentication" in raised.value.message
    assert "MLOPS_LAB_ALLOW_REMOTE_ACCESS=true" in str(raised.value)


def test_up_on_a_non_loopback_host_fails_without_a_traceback(unstarted_settings: Settings) -> None:
    env = {**env_for(unstarted_settings), "MLOPS_LAB_HOST": "0.0.0.0"}
    try:
        result = subprocess.run([CLI, "up"], env=env, capture_output=True, text=True, timeout=600)
    finally:  # should `up` ever accept the host, stop what it started
        LocalRuntime(unstarted_settings).down()
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "MLOPS_LAB_ALLOW_REMOTE_ACCESS=true" in result.stderr
    assert not supervisor.conf_path(unstarted_settings.paths).exists()


def test_up_warns_once_when_remote_access_is_allowed() -> None:
    settings = make_settings(host="0.0.0.0", allow_remote_access=True)
    # A taken port stops `up` before anything starts: the warning comes before that check.
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", settings.mlflow_port))
    blocker.listen()
    try:
        result = subprocess.run(
            [CLI, "up"], env=env_for(settings), capture_output=True, text=True, timeout=120
        )
    finally:
        blocker.close()
        remove_platform_files(settings)
    assert result.returncode == 1
    assert result.stderr.count("no authentication") == 1, result.stderr
    assert "Nothing was started" in result.stderr


# Too deep for a unix socket path: the supervisor socket moves to the shared temp dir.
DEEP_HOME = Path("/srv") / ("x" * 120)


@pytest.fixture
def shared_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A stand-in for /tmp: what tempfile.gettempdir() returns during the test."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_long_data_dir_puts_the_socket_in_a_private_per_user_dir(shared_tmp: Path) -> None:
    first = supervisor.socket_path(DataPaths(DEEP_HOME / "a"))
    second = supervisor.socket_path(DataPaths(DEEP_HOME / "b"))
    assert first.parent == second.parent == shared_tmp / f"mlops-lab-{os.getuid()}"
    assert first != second
    info = first.parent.stat()
    assert info.st_mode & 0o777 == 0o700
    assert info.st_uid == os.getuid()


def test_socket_dir_with_open_permissions_is_refused(shared_tmp: Path) -> None:
    paths = DataPaths(DEEP_HOME)
    supervisor.socket_path(paths).parent.chmod(0o755)
    with pytest.raises(PlatformError, match="0700"):
        _ = supervisor.socket_path(paths)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can create a dir owned by another user")
def test_socket_dir_owned_by_someone_else_is_refused(shared_tmp: Path) -> None:
    paths = DataPaths(DEEP_HOME)
    os.chown(supervisor.socket_path(paths).parent, 65534, 65534)
    with pytest.raises(PlatformError, match="not owned by you"):
        _ = supervisor.socket_path(paths)


def test_socket_dir_that_is_a_symlink_is_refused(shared_tmp: Path) -> None:
    elsewhere = shared_tmp / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (shared_tmp / f"mlops-lab-{os.getuid()}").symlink_to(elsewhere)
    with pytest.raises(PlatformError, match="symbolic link"):
        _ = supervisor.socket_path(DataPaths(DEEP_HOME))


def test_grafana_password_is_shown_only_by_the_up_that_created_it(
    unstarted_settings: Settings,
) -> None:
    path = unstarted_settings.paths.grafana_admin_password
    path.parent.mkdir(parents=True)
    path.write_text("first-secret\n")
    first = grafana_login(unstarted_settings, created_now=True)
    assert "first-secret" in first
    assert str(path) in first
    later = grafana_login(unstarted_settings, created_now=False)
    assert "first-secret" not in later
    assert str(path) in later


def test_a_service_password_goes_to_supervisord_environment_not_its_config(
    unstarted_settings: Settings,
) -> None:
    # Grafana's admin password travels this way (GF_SECURITY_ADMIN_PASSWORD).
    service = Service(
        name="needs-password",
        title="Needs a password",
        port_setting="flows_port",
        health_path="/health",
        command=lambda _s: ["true"],
        env=lambda _s: {"APP_ADMIN_PASSWORD": "hunter2-secret", "APP_MODE": "demo"},
    )
    plan = LocalRuntime(unstarted_settings, services=[service]).plan()
    assert "hunter2-secret" not in plan.config
    assert 'APP_MODE="demo"' in plan.config
    assert "; secret APP_ADMIN_PASSWORD=scrypt:" in plan.config
    assert plan.env["APP_ADMIN_PASSWORD"] == "hunter2-secret"
