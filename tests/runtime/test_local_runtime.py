"""The local runtime, end to end: `mlops-lab up/status/down` against real processes."""

from __future__ import annotations

import json
import os
import signal
import uuid

import httpx
import psutil

from mlops_lab.runtime import executables
from mlops_lab.runtime.local import supervisor
from mlops_lab.runtime.local.runtime import LocalRuntime
from mlops_lab.runtime.services import SERVICES, runnable
from platform_core import monitoring_auth
from tests.runtime.conftest import StartedPlatform
from tests.support import run_cli, wait_for


def _status(platform: StartedPlatform) -> list[dict]:
    result = run_cli(platform.settings, "status", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _platform_pids(platform: StartedPlatform) -> set[int]:
    supervisor = LocalRuntime(platform.settings).supervisor
    root = psutil.Process(supervisor.pid())
    return {root.pid} | {child.pid for child in root.children(recursive=True)}


def test_up_reports_runtime_choice_and_every_url(platform: StartedPlatform) -> None:
    output = platform.up.stderr
    assert "Runtime: local (" in output
    for service in runnable():
        assert service.url(platform.settings) in output
    assert "Platform is up" in output


def test_status_json_shows_every_installed_service_healthy(platform: StartedPlatform) -> None:
    rows = {row["name"]: row for row in _status(platform)}
    assert set(rows) == {s.name for s in SERVICES}
    for service in runnable():
        row = rows[service.name]
        assert row["url"] == service.url(platform.settings)
        if service.on_demand:
            # Started by a lab, not by `up`: shown, and not counted as unhealthy.
            assert (row["state"], row["healthy"]) == ("on demand", False), row
        else:
            assert row["healthy"] is True, row


def test_each_service_answers_its_own_health_endpoint(platform: StartedPlatform) -> None:
    s = platform.settings
    assert httpx.get(s.url(s.mlflow_port, "/health")).text.strip() == "OK"
    assert httpx.get(s.url(s.prefect_port, "/api/health")).json() is True
    login = monitoring_auth.auth(s)
    assert httpx.get(s.url(s.prometheus_port, "/-/ready"), auth=login).status_code == 200
    assert httpx.get(s.url(s.alertmanager_port, "/-/ready"), auth=login).status_code == 200


def test_prometheus_scrapes_every_service_that_exposes_metrics(platform: StartedPlatform) -> None:
    s = platform.settings
    expected = {service.name for service in runnable() if service.metrics_path}

    def all_targets_up() -> bool:
        url = s.url(s.prometheus_port, "/api/v1/targets")
        targets = httpx.get(url, auth=monitoring_auth.auth(s)).json()["data"]
        health = {t["labels"]["job"]: t["health"] for t in targets["activeTargets"]}
        return set(health) == expected and all(h == "up" for h in health.values())

    wait_for(all_targets_up, timeout_s=60, what="every scrape target to be up")


def test_services_listen_on_loopback_only(platform: StartedPlatform) -> None:
    pids = _platform_pids(platform)
    listening = [
        conn
        for conn in psutil.net_connections(kind="inet")
        if conn.pid in pids and conn.status == psutil.CONN_LISTEN
    ]
    assert listening, "no listening sockets found for the platform's processes"
    exposed = [conn.laddr for conn in listening]
    assert all(addr and addr.ip == "127.0.0.1" for addr in exposed), exposed


def test_mlflow_rejects_requests_for_unknown_host_names(platform: StartedPlatform) -> None:
    s = platform.settings
    url = s.url(s.mlflow_port, "/api/2.0/mlflow/experiments/search?max_results=1")
    assert httpx.get(url).status_code == 200
    assert httpx.get(url, headers={"Host": "attacker.example"}).status_code == 403


def test_second_up_says_already_running_and_changes_nothing(platform: StartedPlatform) -> None:
    before = _platform_pids(platform)
    result = run_cli(platform.settings, "up")
    assert result.returncode == 0, result.stderr
    assert "already running" in result.stderr
    assert _platform_pids(platform) == before


def test_two_ups_at_once_start_one_supervisord_and_the_second_reports_it(
    platform: StartedPlatform,
) -> None:
    other = platform.other_up
    assert other.returncode == 0, other.stderr
    assert "Waiting for `mlops-lab up` (pid " in other.stderr
    assert "already running" in other.stderr
    conf = str(supervisor.conf_path(platform.settings.paths))
    pids = [p.pid for p in psutil.process_iter(["cmdline"]) if conf in (p.info["cmdline"] or [])]
    assert pids == [LocalRuntime(platform.settings).supervisor.pid()]


def test_supervisor_restarts_a_crashed_process(platform: StartedPlatform) -> None:
    runtime = LocalRuntime(platform.settings)
    old_pid = runtime.supervisor.process_info()["alertmanager"]["pid"]
    os.kill(old_pid, signal.SIGKILL)

    def restarted() -> bool:
        info = runtime.supervisor.process_info()["alertmanager"]
        return info["statename"] == "RUNNING" and info["pid"] not in (0, old_pid)

    wait_for(restarted, timeout_s=30, what="alertmanager to be restarted")
    s = platform.settings
    ready, login = s.url(s.alertmanager_port, "/-/ready"), monitoring_auth.auth(s)
    wait_for(
        lambda: httpx.get(ready, auth=login).status_code == 200,
        timeout_s=30,
        what="the restarted alertmanager to be ready",
    )


def test_logs_shows_the_tail_of_a_service_log(platform: StartedPlatform) -> None:
    result = run_cli(platform.settings, "logs", "mlflow", "--lines", "5")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert 0 < len(lines) <= 5


def test_logs_of_an_unknown_service_names_the_known_ones(platform: StartedPlatform) -> None:
    result = run_cli(platform.settings, "logs", "nope")
    assert result.returncode == 1
    assert "No service named 'nope'" in result.stderr
    assert "mlflow" in result.stderr


def test_grafana_is_healthy_or_reported_as_not_installed_with_hint(
    platform: StartedPlatform,
) -> None:
    grafana = {row["name"]: row for row in _status(platform)}["grafana"]
    if executables.GRAFANA.find() is None:
        assert grafana["state"] == "not installed"
        assert "apt-get install" in grafana["detail"]
        assert "brew install grafana" in grafana["detail"]
    else:
        assert grafana["healthy"] is True


def test_down_then_up_keeps_runs_models_and_flow_history(platform: StartedPlatform) -> None:
    s = platform.settings
    mlflow_api = s.url(s.mlflow_port, "/api/2.0/mlflow")
    prefect_api = s.url(s.prefect_port, "/api")
    experiment_id = httpx.post(
        f"{mlflow_api}/experiments/create", json={"name": "kept-across-restarts"}
    ).json()["experiment_id"]
    httpx.post(f"{mlflow_api}/registered-models/create", json={"name": "kept-model"})
    # Prefect wants a CSRF token with every change (its own client fetches one the same way).
    client = str(uuid.uuid4())
    token = httpx.get(f"{prefect_api}/csrf-token", params={"client": client}).json()["token"]
    prefect = httpx.Client(
        base_url=prefect_api, headers={"Prefect-Csrf-Token": token, "Prefect-Csrf-Client": client}
    )
    flow_id = prefect.post("/flows/", json={"name": "kept-flow"}).json()["id"]
    flow_run_id = prefect.post("/flow_runs/", json={"flow_id": flow_id}).json()["id"]
    prefect.close()
    pids = _platform_pids(platform)

    down = run_cli(s, "down")
    assert down.returncode == 0, down.stderr
    assert not any(psutil.pid_exists(pid) for pid in pids)

    up = run_cli(s, "up")
    assert up.returncode == 0, up.stderr
    experiment = httpx.get(
        f"{mlflow_api}/experiments/get", params={"experiment_id": experiment_id}
    ).json()["experiment"]
    assert experiment["name"] == "kept-across-restarts"
    model = httpx.get(f"{mlflow_api}/registered-models/get", params={"name": "kept-model"})
    assert model.status_code == 200
    assert httpx.get(f"{prefect_api}/flow_runs/{flow_run_id}").json()["flow_id"] == flow_id
