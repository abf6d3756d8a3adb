"""What a running platform must never do: change under a refused `up`, or write or show a
credential (Prometheus's and Alertmanager's login: test_monitoring_login.py). Also: `traffic`
waits for serving."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psutil
from pydantic import SecretStr

from mlops_lab.runtime.local import supervisor
from mlops_lab.runtime.local.runtime import LocalRuntime
from tests.runtime.conftest import LOG_PASSWORD, StartedPlatform, log_url
from tests.support import run_cli


def _run_dir_files(platform: StartedPlatform) -> dict[Path, bytes]:
    run = platform.settings.paths.run
    paths = [run / "supervisord.conf", run / "prometheus.yml", run / "alertmanager.yml"]
    paths += [run / "web.yml", run / "amtool.yml"]
    paths += sorted((run / "rules").glob("*.yml"))
    return {path: path.read_bytes() for path in paths}


def test_refused_up_leaves_the_running_configs_byte_identical(platform: StartedPlatform) -> None:
    before = _run_dir_files(platform)
    changed = platform.settings.model_copy(update={"alert_error_ratio": 0.07})
    result = run_cli(changed, "up")
    assert _run_dir_files(platform) == before
    assert result.returncode == 1
    assert "other settings than the current ones" in result.stderr
    assert "MLOPS_LAB_ALERT_ERROR_RATIO" in result.stderr


def test_up_refuses_when_only_a_secret_changed_and_does_not_show_it(
    platform: StartedPlatform,
) -> None:
    other_password = "pw-other-secret"
    changed = platform.settings.model_copy(
        update={"prediction_log_url": SecretStr(log_url(other_password))}
    )
    result = run_cli(changed, "up")
    assert result.returncode == 1
    assert "MLOPS_LAB_PREDICTION_LOG_URL" in result.stderr
    assert other_password not in result.stdout + result.stderr
    assert LOG_PASSWORD not in result.stdout + result.stderr


def test_supervisord_config_holds_no_credential(platform: StartedPlatform) -> None:
    text = supervisor.conf_path(platform.settings.paths).read_text()
    assert LOG_PASSWORD not in text
    # A digest stands in for the value, so a changed password still shows as a change.
    assert "MLOPS_LAB_PREDICTION_LOG_URL" in text


def test_services_still_receive_the_prediction_log_url(platform: StartedPlatform) -> None:
    pid = LocalRuntime(platform.settings).supervisor.process_info()["drift-monitor"]["pid"]
    environ = psutil.Process(pid).environ()
    assert environ["MLOPS_LAB_PREDICTION_LOG_URL"] == platform.settings.prediction_log_db_url


def test_up_and_status_show_no_credential(platform: StartedPlatform) -> None:
    assert LOG_PASSWORD not in platform.up.stdout + platform.up.stderr
    for args in (("status",), ("status", "--json")):
        result = run_cli(platform.settings, *args)
        assert result.returncode == 0, result.stderr
        assert LOG_PASSWORD not in result.stdout + result.stderr
    json.loads(run_cli(platform.settings, "status", "--json").stdout)


def test_traffic_waits_for_a_champion_then_names_what_serving_waits_for(
    platform: StartedPlatform,
) -> None:
    # No model was ever trained on this platform: serving is live but never becomes ready.
    started = time.monotonic()
    result = run_cli(platform.settings, "traffic", "--wait", "4", "--duration", "1")
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert "Waiting for serving" in result.stderr
    assert "not ready after 4s" in result.stderr
    assert "no champion yet" in result.stderr
    assert elapsed >= 4
