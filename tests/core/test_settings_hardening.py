"""Settings cannot carry anything into the files rendered from them, never show a credential, and
the directories holding the platform's state and credentials are private to their user."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_lab.runtime.kube.plan import KubePaths
from platform_core.errors import PlatformError
from platform_core.paths import DataPaths
from platform_core.settings import get_settings
from tests.support import settings_without_dotenv

PASSWORD = "pw-hardening-7f3a"
LOG_URL = f"postgresql+psycopg://lab:{PASSWORD}@127.0.0.1:5432/predictions"


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment get_settings reads, without a service's own file."""
    monkeypatch.delenv("MLOPS_LAB_SERVICE", raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    ("variable", "value", "where"),
    [
        ("MLOPS_LAB_MODEL_NAME", "loan\n[program:injected]\ncommand=/bin/sh", "position 4"),
        ("MLOPS_LAB_SERVICE_HOSTS", '{"mlflow": "mlflow\\r[program:injected]"}', "'mlflow'"),
        ("MLOPS_LAB_ALLOWED_HOSTS", '{"serving": ["a.example", "b\\u0000"]}', "'serving'"),
        ("MLOPS_LAB_HOME", "/tmp/lab\u2028data", "position 8"),
    ],
)
def test_a_control_character_in_a_setting_is_refused_naming_its_variable(
    environment: pytest.MonkeyPatch, variable: str, value: str, where: str
) -> None:
    environment.setenv(variable, value)
    with pytest.raises(PlatformError) as refused:
        get_settings()
    message = str(refused.value)
    assert f"{variable}: holds" in message
    assert where in message
    assert "remove the character" in message


def test_a_refused_secret_is_not_shown(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("MLOPS_LAB_PREDICTION_LOG_URL", LOG_URL + "\n")
    with pytest.raises(PlatformError) as refused:
        get_settings()
    assert "MLOPS_LAB_PREDICTION_LOG_URL" in str(refused.value)
    assert PASSWORD not in str(refused.value)


def test_the_settings_repr_holds_no_password() -> None:
    settings = settings_without_dotenv(prediction_log_url=LOG_URL)
    for shown in (repr(settings), str(settings), settings.model_dump_json()):
        assert PASSWORD not in shown


def test_child_processes_and_connections_still_get_the_password() -> None:
    settings = settings_without_dotenv(prediction_log_url=LOG_URL)
    assert settings.to_env()["MLOPS_LAB_PREDICTION_LOG_URL"] == LOG_URL
    assert settings.prediction_log_db_url == LOG_URL
    assert "MLOPS_LAB_PREDICTION_LOG_URL" in settings.secret_env_names()


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The common umask, under which a plain mkdir makes a directory everyone can read."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_data_dir_is_created_private(usual_umask: None, tmp_path: Path) -> None:
    DataPaths(tmp_path / "data").ensure()
    assert mode(tmp_path / "data") == 0o700


def test_an_existing_data_dir_open_to_others_is_made_private(
    usual_umask: None, tmp_path: Path
) -> None:
    (tmp_path / "data").mkdir(mode=0o755)
    DataPaths(tmp_path / "data").ensure()
    assert mode(tmp_path / "data") == 0o700


def test_the_terraform_state_dir_is_private(usual_umask: None, tmp_path: Path) -> None:
    paths = KubePaths(tmp_path / "data")
    paths.ensure()
    assert mode(paths.root) == 0o700
    assert mode(paths.tfstate("cluster").parent) == 0o700
