"""The local runtime through the Runtime interface the CLI, the lab engine and the labs use:
processes in the neutral shape, a service stopped and started, a configuration override that
reaches its service only and goes away again, a configuration reload."""

from __future__ import annotations

import httpx

from mlops_lab.runtime.base import Runtime, State
from mlops_lab.runtime.local.runtime import LocalRuntime
from mlops_lab.runtime.services import runnable
from platform_core import monitoring_auth
from tests.runtime.conftest import StartedPlatform
from tests.support import wait_for


def _runtime(platform: StartedPlatform) -> Runtime:
    return LocalRuntime(platform.settings)


def test_processes_are_reported_in_the_shape_every_runtime_shares(
    platform: StartedPlatform,
) -> None:
    processes = _runtime(platform).processes()
    for service in runnable():
        if service.on_demand:
            continue
        process = processes[service.name]
        assert process.state is State.running and process.running, process
        assert process.pid and process.started_at, process


def test_a_stopped_service_is_reported_stopped_until_it_is_started(
    platform: StartedPlatform,
) -> None:
    runtime = _runtime(platform)
    runtime.stop("alert-receiver")
    try:
        assert runtime.processes()["alert-receiver"].state is State.stopped
    finally:
        runtime.start("alert-receiver")
    wait_for(lambda: runtime.processes()["alert-receiver"].running, 30, what="alert-receiver")


def test_an_override_reaches_its_service_and_clearing_it_restores_the_settings(
    platform: StartedPlatform,
) -> None:
    settings = platform.settings
    runtime = _runtime(platform)
    health = settings.url(settings.flows_port, "/health")
    before = runtime.processes()["flows"].pid

    runtime.set_override("flows", {"MLOPS_LAB_GATE_MIN_AUC": "0.55"})
    assert httpx.get(health, timeout=10).json()["gate"]["min_auc"] == 0.55
    assert runtime.processes()["flows"].pid != before
    assert (settings.paths.config / "flows.env").exists()

    assert runtime.clear_overrides() == ["flows"]
    assert not (settings.paths.config / "flows.env").exists()
    wait_for(
        lambda: httpx.get(health, timeout=10).json()["gate"]["min_auc"] == settings.gate_min_auc,
        60,
        what="flows to run with the platform's gate again",
    )
    assert runtime.clear_overrides() == []


def test_a_reload_makes_prometheus_read_its_configuration_again(
    platform: StartedPlatform,
) -> None:
    settings = platform.settings
    metrics = settings.url(settings.prometheus_port, "/metrics")

    def last_reload() -> float:
        page = httpx.get(metrics, timeout=10, auth=monitoring_auth.auth(settings))
        for line in page.text.splitlines():
            if line.startswith("prometheus_config_last_reload_success_timestamp_seconds "):
                return float(line.split()[1])
        raise AssertionError("Prometheus reports no successful configuration load")

    before = last_reload()
    pid = _runtime(platform).processes()["prometheus"].pid
    _runtime(platform).reload("prometheus")
    wait_for(lambda: last_reload() > before, 30, what="Prometheus to reload its configuration")
    assert _runtime(platform).processes()["prometheus"].pid == pid  # reloaded, not restarted
