"""Prometheus and Alertmanager ask every request for the platform's password (issue 23): a web
page the learner opens can no longer post to them, while Prometheus, amtool and the platform's
own clients log in with the password file the first `up` generated.

Nothing here changes what the package's other tests see: the one silence created matches no
alert and is expired at once."""

from __future__ import annotations

import stat
import subprocess

import bcrypt
import httpx
import pytest

from monitoring import configs
from platform_core import monitoring_auth, promql
from platform_core.settings import Settings
from tests.runtime.conftest import StartedPlatform
from tests.support import run_cli, wait_for

ATTACKER = "http://attacker.example"


def _silence(comment: str) -> dict:
    return {
        "matchers": [
            {"name": "alertname", "value": "NoSuchAlert", "isRegex": False, "isEqual": True}
        ],
        "startsAt": "2020-01-01T00:00:00Z",
        "endsAt": "2099-01-01T00:00:00Z",
        "createdBy": "tests/runtime/test_monitoring_login.py",
        "comment": comment,
    }


def _alertmanager(settings: Settings, path: str) -> str:
    return settings.url(settings.alertmanager_port, path)


def _prometheus(settings: Settings, path: str) -> str:
    return settings.url(settings.prometheus_port, path)


def _silence_comments(settings: Settings) -> set[str]:
    url = _alertmanager(settings, "/api/v2/silences")
    response = httpx.get(url, auth=monitoring_auth.auth(settings), timeout=10)
    response.raise_for_status()
    return {silence["comment"] for silence in response.json()}


def _password(settings: Settings) -> str:
    return settings.paths.monitoring_password.read_text().strip()


def test_alertmanager_refuses_a_silence_without_the_password(platform: StartedPlatform) -> None:
    s = platform.settings
    silence = _silence("sent without the password")
    response = httpx.post(_alertmanager(s, "/api/v2/silences"), json=silence, timeout=10)
    assert response.status_code == 401
    assert silence["comment"] not in _silence_comments(s)


@pytest.mark.parametrize("path", ["/-/reload", "/-/quit"])
def test_prometheus_refuses_a_lifecycle_call_without_the_password(
    platform: StartedPlatform, path: str
) -> None:
    response = httpx.post(_prometheus(platform.settings, path), timeout=10)
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("port", "path"),
    [("alertmanager_port", "/api/v2/silences"), ("prometheus_port", "/api/v1/query")],
    ids=["alertmanager", "prometheus"],
)
def test_a_cross_site_preflight_gets_no_cors_grant(
    platform: StartedPlatform, port: str, path: str
) -> None:
    """What a browser asks before a page's JSON POST: answered 401, with nothing that lets the
    page send it (both granted every origin before)."""
    s = platform.settings
    headers = {
        "origin": ATTACKER,
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type",
    }
    response = httpx.options(s.url(getattr(s, port), path), headers=headers, timeout=10)
    assert response.status_code == 401
    assert "access-control-allow-origin" not in response.headers


def test_an_alert_posted_by_a_web_form_is_refused(platform: StartedPlatform) -> None:
    """A form needs no preflight, and Alertmanager 0.25's v1 API reads JSON whatever the
    Content-Type says: a page could fire a retrain alert with one."""
    s = platform.settings
    alert = '[{"labels": {"alertname": "PostedByAWebForm", "action": "retrain"}}]'
    headers = {"origin": ATTACKER, "content-type": "text/plain"}
    url = _alertmanager(s, "/api/v1/alerts")
    response = httpx.post(url, content=alert, headers=headers, timeout=10)
    assert response.status_code == 401
    alerts = httpx.get(
        _alertmanager(s, "/api/v2/alerts"), auth=monitoring_auth.auth(s), timeout=10
    ).json()
    assert "PostedByAWebForm" not in {a["labels"]["alertname"] for a in alerts}


def test_alertmanager_takes_a_silence_with_the_password(platform: StartedPlatform) -> None:
    s = platform.settings
    login = monitoring_auth.auth(s)
    silence = _silence("sent with the password")
    response = httpx.post(
        _alertmanager(s, "/api/v2/silences"), json=silence, auth=login, timeout=10
    )
    assert response.status_code == 200, response.text
    silence_id = response.json()["silenceID"]
    try:
        assert silence["comment"] in _silence_comments(s)
    finally:
        httpx.delete(_alertmanager(s, f"/api/v2/silence/{silence_id}"), auth=login, timeout=10)


def test_prometheus_lets_the_logged_in_through_to_its_disabled_lifecycle_api(
    platform: StartedPlatform,
) -> None:
    """With the password a request reaches Prometheus itself, which still has no lifecycle API:
    changes arrive through `up` or a reload signal."""
    login = monitoring_auth.auth(platform.settings)
    response = httpx.post(_prometheus(platform.settings, "/-/reload"), auth=login, timeout=10)
    assert response.status_code == 403
    assert "Lifecycle API is not enabled" in response.text


def test_prometheus_logs_in_to_the_alertmanager_it_notifies(platform: StartedPlatform) -> None:
    s = platform.settings
    url = _prometheus(s, "/api/v1/alertmanagers")
    active = httpx.get(url, auth=monitoring_auth.auth(s), timeout=10).json()["data"]
    assert active["activeAlertmanagers"] == [{"url": _alertmanager(s, "/api/v2/alerts")}]
    # Prometheus scrapes Alertmanager and itself with the same login.
    expr = 'up{job=~"prometheus|alertmanager"}'
    wait_for(
        lambda: (
            {r["metric"]["job"]: r["value"] for r in promql.query(s, expr)}
            == {"prometheus": 1.0, "alertmanager": 1.0}
        ),
        30,
        what="Prometheus to scrape itself and Alertmanager, logged in",
    )


@pytest.mark.parametrize("command", [["alert", "query"], ["config", "show"]])
def test_amtool_asks_alertmanager_with_the_rendered_http_config(
    platform: StartedPlatform, command: list[str]
) -> None:
    """The commands the README and lab 11 give the learner."""
    s = platform.settings
    base = ["amtool", f"--alertmanager.url={s.alertmanager_url}"]
    login = f"--http.config.file={configs.amtool_config_path(s)}"
    logged_in = subprocess.run(
        [*base, login, *command], capture_output=True, text=True, check=False
    )
    assert logged_in.returncode == 0, logged_in.stderr
    anonymous = subprocess.run([*base, *command], capture_output=True, text=True, check=False)
    assert anonymous.returncode != 0
    assert "401" in anonymous.stderr


def test_the_password_file_is_private_and_up_names_it_never_shows_it(
    platform: StartedPlatform,
) -> None:
    s = platform.settings
    path = s.paths.monitoring_password
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(s.paths.monitoring_password_hash.stat().st_mode) == 0o600
    output = platform.up.stdout + platform.up.stderr
    assert _password(s) not in output
    assert f"password in {path}" in output
    assert f"user {monitoring_auth.USER}" in output
    assert "Generated the password Prometheus and Alertmanager ask for" in output


def test_status_says_how_to_log_in(platform: StartedPlatform) -> None:
    s = platform.settings
    result = run_cli(s, "status")
    assert result.returncode == 0, result.stderr
    assert _password(s) not in result.stdout + result.stderr
    expected = f"user {monitoring_auth.USER}, password in {s.paths.monitoring_password}"
    assert expected in result.stderr


def test_a_second_up_keeps_the_password_and_its_hash(platform: StartedPlatform) -> None:
    s = platform.settings
    before = (_password(s), s.paths.monitoring_password_hash.read_text())
    result = run_cli(s, "up")
    assert result.returncode == 0, result.stderr
    assert "already running" in result.stderr
    assert "Generated the password" not in result.stderr
    assert (_password(s), s.paths.monitoring_password_hash.read_text()) == before


def test_the_rendered_configs_hold_no_password(platform: StartedPlatform) -> None:
    s = platform.settings
    password = _password(s)
    rendered = [path for path in s.paths.run.rglob("*") if path.is_file()]
    assert configs.web_config_path(s) in rendered
    for path in rendered:
        assert password not in path.read_text(errors="replace"), path
    # The web config holds the password's bcrypt hash, which Prometheus and Alertmanager check.
    web = configs.web_config(s)["basic_auth_users"][monitoring_auth.USER]
    assert web in configs.web_config_path(s).read_text()
    assert bcrypt.checkpw(password.encode(), web.encode())
