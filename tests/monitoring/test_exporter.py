"""What the drift monitor exports for each check outcome; every metric is documented."""

from __future__ import annotations

import math
import re
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from monitoring.assets import default_settings
from monitoring.check import CheckOutcome, Status
from monitoring.drift import compute_drift
from monitoring.exporter import DriftMetrics
from monitoring.performance import Performance
from monitoring.receiver import Receiver
from pipelines import data
from platform_core.rollout_analysis import Analysis, VersionFigures
from tests.models import TYPES

SETTINGS = default_settings()
README = Path(__file__).resolve().parents[2] / "monitoring" / "README.md"


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple], float]:
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return _samples(registry).get((name, tuple(sorted(labels.items()))))


def _ok_outcome(scenario: str = "unit_bug") -> CheckOutcome:
    drift = compute_drift(
        data.generate(2_000, seed=1), data.generate(300, scenario, seed=2), TYPES, SETTINGS
    )
    return CheckOutcome(
        Status.OK,
        "ok",
        "3",
        window_rows=300,
        drift=drift,
        performance=Performance(150, 0.8, 0.75),
        duration_s=0.4,
    )


def test_an_ok_check_exports_one_series_per_feature() -> None:
    metrics = DriftMetrics(SETTINGS)
    metrics.publish(_ok_outcome("unit_bug"))
    r = metrics.registry
    assert _value(r, "drift_feature_drifted", feature="annual_income") == 1
    assert _value(r, "drift_feature_drifted", feature="age") == 0
    score = _value(r, "drift_feature_score", feature="annual_income", method="wasserstein")
    assert score is not None and score > 1
    assert _value(r, "drift_drifted_features_ratio") == 0.1
    assert _value(r, "drift_dataset_drifted") == 0
    assert _value(r, "drift_window_rows") == 300
    assert _value(r, "drift_model_version", model_name=SETTINGS.model_name) == 3
    assert _value(r, "drift_check_status", status="ok") == 1
    assert _value(r, "drift_check_status", status="no_champion") == 0
    assert _value(r, "drift_checks_total", status="ok") == 1
    assert _value(r, "drift_check_duration_seconds_count") == 1
    assert _value(r, "model_performance_roc_auc_ratio", model_name=SETTINGS.model_name) == 0.75


def test_losing_mlflow_keeps_the_last_verdict_but_not_the_success_time() -> None:
    metrics = DriftMetrics(SETTINGS)
    metrics.publish(_ok_outcome("covariate_shift"))
    succeeded_at = _value(metrics.registry, "drift_last_success_timestamp_seconds")
    metrics.publish(
        CheckOutcome(Status.MLFLOW_UNREACHABLE, "MLflow is not reachable", registry_reachable=False)
    )
    r = metrics.registry
    assert _value(r, "drift_registry_reachable") == 0
    assert _value(r, "drift_dataset_drifted") == 1
    assert _value(r, "drift_check_status", status="mlflow_unreachable") == 1
    assert _value(r, "drift_check_status", status="ok") == 0
    assert _value(r, "drift_last_success_timestamp_seconds") == succeeded_at


def test_no_champion_clears_the_verdict_and_counts_as_healthy() -> None:
    metrics = DriftMetrics(SETTINGS)
    metrics.publish(_ok_outcome("covariate_shift"))
    metrics.publish(CheckOutcome(Status.NO_CHAMPION, "no champion"))
    samples = _samples(metrics.registry)
    assert not [key for key in samples if key[0] == "drift_feature_drifted"]
    assert not [key for key in samples if key[0] == "drift_model_version"]
    assert _value(metrics.registry, "drift_check_status", status="no_champion") == 1


def test_every_series_exists_before_the_first_check() -> None:
    metrics = DriftMetrics(SETTINGS)
    for status in Status:
        assert _value(metrics.registry, "drift_checks_total", status=status.value) == 0
    assert _value(metrics.registry, "drift_share_threshold_ratio") == SETTINGS.drift_share_threshold
    succeeded_at = _value(metrics.registry, "drift_last_success_timestamp_seconds")
    assert succeeded_at is not None and succeeded_at > 0


def _exported_names(home: Path) -> set[str]:
    receiver = Receiver(SETTINGS.model_copy(update={"home": home}))
    registries = [DriftMetrics(SETTINGS).registry, receiver.registry]
    return {
        family.name + ("_total" if family.type == "counter" else "")
        for registry in registries
        for family in registry.collect()
    }


def test_metric_names_follow_prometheus_conventions(tmp_path: Path) -> None:
    names = _exported_names(tmp_path)
    for name in names:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", name), name
    assert any(name.endswith("_seconds") for name in names)


def test_every_exported_metric_is_documented_in_the_readme(tmp_path: Path) -> None:
    documented = set(re.findall(r"^\| `([a-z_]+)`", README.read_text(), flags=re.MULTILINE))
    names = _exported_names(tmp_path)
    assert names <= documented, f"not in monitoring/README.md: {sorted(names - documented)}"


def _analysis(mode: str = "shadow") -> Analysis:
    from platform_core.rollout import Plan, Rollout

    rollout = Rollout("4", Plan("shadow") if mode == "shadow" else Plan.canary(10), "t", "tests")
    champion = VersionFigures("3", "champion", 500, 100, 0.81, 0.02, None, None, None)
    candidate = VersionFigures("4", mode, 500, 100, 0.78, 0.021, None, None, None)
    agreement = 0.93 if mode == "shadow" else None
    return Analysis(rollout, 60.0, champion, candidate, agreement, 0.05, -0.03, 0.01)


def test_a_rollout_analysis_is_exported_per_version_and_cleared_when_it_ends() -> None:
    metrics = DriftMetrics(SETTINGS)
    r = metrics.registry
    assert _value(r, "rollout_in_progress") == 0
    metrics.publish_rollout(_analysis())
    assert _value(r, "rollout_in_progress") == 1
    assert _value(r, "rollout_roc_auc_ratio", model_version="4", role="shadow") == 0.78
    assert _value(r, "rollout_labelled_records", model_version="3", role="champion") == 100
    assert _value(r, "rollout_shadow_agreement_ratio") == 0.93

    metrics.publish_rollout(None)

    assert _value(r, "rollout_in_progress") == 0
    assert _value(r, "rollout_roc_auc_ratio", model_version="4", role="shadow") is None
    agreement = _value(r, "rollout_shadow_agreement_ratio")
    assert agreement is not None and math.isnan(agreement)


def test_a_canary_exports_no_shadow_agreement() -> None:
    metrics = DriftMetrics(SETTINGS)
    metrics.publish_rollout(_analysis("shadow"))
    metrics.publish_rollout(_analysis("canary"))
    agreement = _value(metrics.registry, "rollout_shadow_agreement_ratio")
    assert agreement is not None and math.isnan(agreement)
