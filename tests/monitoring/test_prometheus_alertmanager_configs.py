"""Alert rules, Prometheus and Alertmanager configs: promtool, amtool, and one source of truth."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from mlops_lab.runtime.services import runnable
from monitoring import assets, configs, rules
from platform_core.settings import Settings
from tests.support import make_settings, remove_platform_files


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, check=False, timeout=60
    )


@pytest.fixture(scope="module")
def fast() -> Iterator[Settings]:
    settings = make_settings(drift_interval_s=2.0, drift_alert_for_s=4.0, alert_for_s=0.5)
    yield settings
    remove_platform_files(settings)


def test_committed_files_match_the_generators() -> None:
    stale = [
        str(path.relative_to(configs.MONITORING_DIR.parent))
        for path, text in assets.expected_files().items()
        if not path.exists() or path.read_text() != text
    ]
    assert not stale, f"out of date, run `make monitoring-assets`: {stale}"


def test_committed_rules_pass_promtool_check() -> None:
    result = _run("promtool", "check", "rules", rules.COMMITTED_RULES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_passes_its_promtool_unit_tests() -> None:
    tests = sorted(rules.RULE_TESTS_DIR.glob("*.yml"))
    result = _run("promtool", "test", "rules", *tests)
    assert result.returncode == 0, result.stdout + result.stderr


def _committed(kind: str) -> set[str]:
    """Names of the committed rules of a kind: "alert" or "record"."""
    return {
        rule[kind]
        for group in yaml.safe_load(rules.COMMITTED_RULES.read_text())["groups"]
        for rule in group["rules"]
        if kind in rule
    }


def _tested(section: str, key: str, expected: str) -> set[str]:
    """``key`` of each promtool case in ``section`` that expects something (``expected``)."""
    return {
        case[key]
        for path in rules.RULE_TESTS_DIR.glob("*.yml")
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get(section, [])
        if case.get(expected)
    }


def test_every_alert_has_a_unit_test() -> None:
    alerts = _committed("alert")
    tested = _tested("alert_rule_test", "alertname", "exp_alerts")
    assert alerts <= tested, f"alerts without a firing test: {sorted(alerts - tested)}"


def test_every_recording_rule_has_a_unit_test() -> None:
    recorded = _committed("record")
    tested = _tested("promql_expr_test", "expr", "exp_samples")
    assert recorded, "the rollout group records per-version series"
    assert recorded <= tested, f"recording rules without a test: {sorted(recorded - tested)}"


def test_rendered_config_and_rules_pass_promtool(fast: Settings) -> None:
    configs.write_prometheus_config(fast, runnable())
    result = _run("promtool", "check", "config", configs.prometheus_config_path(fast))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 19 rules found" in result.stdout


def test_rendered_rules_take_durations_and_thresholds_from_the_settings(fast: Settings) -> None:
    document = rules.rules_document(fast)
    by_name = {
        rule["alert"]: rule
        for group in document["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    assert by_name["DataDriftDetected"]["for"] == "4s"
    assert by_name["TargetDown"]["for"] == "500ms"
    assert by_name["DriftMonitorStale"]["for"] == "2s"
    assert "> 6" in by_name["DriftMonitorStale"]["expr"]
    assert f"< {fast.gate_min_auc}" in by_name["ModelPerformanceDegraded"]["expr"]
    assert f"> {fast.alert_latency_p99_s}" in by_name["ServingLatencySLOBreached"]["expr"]
    assert by_name["RolloutCandidateErrorRateHigh"]["for"] == "500ms"
    assert (
        f"> {fast.alert_rollout_error_floor:g}" in by_name["RolloutCandidateErrorRateHigh"]["expr"]
    )
    shadow = f"< {fast.alert_shadow_agreement_min:g}"
    assert shadow in by_name["RolloutShadowDisagreement"]["expr"]


def test_prometheus_loads_the_rendered_rules_and_the_teams_own(fast: Settings) -> None:
    rule_files = configs.prometheus_config(fast, runnable())["rule_files"]
    assert rule_files == [
        str(rules.rules_dir(fast) / "*.yml"),
        str(fast.paths.config / "rules" / "*.yml"),
    ]


def test_scrape_config_covers_the_monitoring_services(fast: Settings) -> None:
    jobs = {
        job["job_name"]: job["static_configs"][0]["targets"][0]
        for job in configs.prometheus_config(fast, runnable())["scrape_configs"]
    }
    assert jobs["drift-monitor"] == f"{fast.host}:{fast.drift_monitor_port}"
    assert jobs["alert-receiver"] == f"{fast.host}:{fast.alert_receiver_port}"
    assert {"mlflow", "prometheus", "serving"} <= set(jobs)


def test_committed_and_rendered_alertmanager_configs_pass_amtool(fast: Settings) -> None:
    configs.write_alertmanager_config(fast, runnable())
    for path in (configs.COMMITTED_ALERTMANAGER, configs.alertmanager_config_path(fast)):
        result = _run("amtool", "check-config", path)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["alertname=DataDriftDetected", "action=retrain"], "retrain"),
        (["alertname=ModelPerformanceDegraded", "action=retrain"], "retrain"),
        (["alertname=FeatureDriftDetected", "severity=info"], "log"),
        (["alertname=TargetDown", "severity=critical"], "log"),
        (["alertname=ServingErrorRateHigh", "severity=critical"], "log"),
    ],
)
def test_alerts_route_by_their_action_label(labels: list[str], receiver: str) -> None:
    result = _run(
        "amtool",
        "config",
        "routes",
        "test",
        f"--config.file={configs.COMMITTED_ALERTMANAGER}",
        *labels,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver


def test_rule_labels_send_the_drift_and_performance_alerts_to_retrain() -> None:
    document = rules.rules_document(assets.default_settings())
    actions = {
        rule["alert"]: rule["labels"].get("action")
        for group in document["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    retrain = {name for name, action in actions.items() if action == "retrain"}
    assert retrain == {"DataDriftDetected", "ModelPerformanceDegraded"}


def test_receiver_urls_point_at_the_alert_receiver(fast: Settings) -> None:
    receivers = {r["name"]: r for r in configs.alertmanager_config(fast)["receivers"]}
    base = f"http://{fast.host}:{fast.alert_receiver_port}"
    assert receivers["retrain"]["webhook_configs"][0]["url"] == f"{base}/alerts/retrain"
    assert receivers["log"]["webhook_configs"][0]["url"] == f"{base}/alerts/log"
