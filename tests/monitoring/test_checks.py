"""One drift check against a real MLflow and a real prediction log, in each state it can meet."""

from __future__ import annotations

import time

from sqlalchemy.engine import Engine

from monitoring.check import DriftChecker, Status
from pipelines import data
from platform_core.settings import Settings
from tests.models import register_champion, register_model
from tests.monitoring.support import (
    delete_reference,
)
from tests.support import free_ports, log_predictions


def test_no_champion_is_reported_with_what_to_do(own: Settings, own_log: Engine) -> None:
    outcome = DriftChecker(own, own_log).check()
    assert outcome.status == Status.NO_CHAMPION
    assert own.model_name in outcome.message
    assert "mlops-lab train" in outcome.message


def test_too_few_predictions_is_not_enough_data(own: Settings, own_log: Engine) -> None:
    champion = register_champion(own)
    log_predictions(own_log, own.model_name, data.generate(50, seed=5), champion.version)
    outcome = DriftChecker(own, own_log).check()
    assert outcome.status == Status.NOT_ENOUGH_DATA
    assert outcome.window_rows == 50
    assert outcome.model_version == champion.version
    assert "Only 50 predictions" in outcome.message


def test_missing_reference_artifact_is_reported(own: Settings, own_log: Engine) -> None:
    champion = register_champion(own)
    delete_reference(own, champion.run_id)
    log_predictions(own_log, own.model_name, data.generate(300, seed=5), champion.version)
    outcome = DriftChecker(own, own_log).check()
    assert outcome.status == Status.REFERENCE_MISSING
    assert f"v{champion.version}" in outcome.message
    assert "reference" in outcome.message


def test_mlflow_down_is_reported_within_seconds(own: Settings, own_log: Engine) -> None:
    (closed,) = free_ports(1)
    unreachable = own.model_copy(update={"mlflow_port": closed})
    started = time.monotonic()
    outcome = DriftChecker(unreachable, own_log).check()
    assert outcome.status == Status.MLFLOW_UNREACHABLE
    assert unreachable.mlflow_url in outcome.message
    assert time.monotonic() - started < 30


def test_baseline_traffic_drifts_no_feature(own: Settings, own_log: Engine) -> None:
    champion = register_champion(own)
    log_predictions(
        own_log, own.model_name, data.generate(300, "baseline", seed=11), champion.version
    )
    outcome = DriftChecker(own, own_log).check()
    assert outcome.status == Status.OK, outcome.message
    assert outcome.drift is not None
    assert outcome.drift.drifted_features == []
    assert not outcome.drift.dataset_drifted


def test_unit_bug_traffic_drifts_annual_income_only(own: Settings, own_log: Engine) -> None:
    champion = register_champion(own)
    log_predictions(
        own_log, own.model_name, data.generate(300, "unit_bug", seed=11), champion.version
    )
    outcome = DriftChecker(own, own_log).check()
    assert outcome.drift is not None
    assert outcome.drift.drifted_features == ["annual_income"]


def test_a_named_version_is_compared_with_its_own_reference(own: Settings, own_log: Engine) -> None:
    # A candidate trained on incomes in thousands, before it answers anyone: the traffic the
    # champion answers (dollars) does not look like what it learned from.
    champion = register_champion(own)
    candidate = register_model(own, seed=2, scenario="unit_bug")
    log_predictions(
        own_log, own.model_name, data.generate(300, "baseline", seed=11), champion.version
    )
    against_champion = DriftChecker(own, own_log).check().drift
    assert against_champion is not None and against_champion.drifted_features == []
    outcome = DriftChecker(own, own_log, version=candidate.version).check()
    assert outcome.status == Status.OK, outcome.message
    assert outcome.model_version == candidate.version
    assert outcome.drift is not None
    assert outcome.drift.drifted_features == ["annual_income"]
    assert f"v{candidate.version} reference" in outcome.message


def test_a_version_not_in_the_registry_is_named(own: Settings, own_log: Engine) -> None:
    register_champion(own)
    outcome = DriftChecker(own, own_log, version="999").check()
    assert outcome.status == Status.NO_CHAMPION
    assert "no version '999'" in outcome.message
    assert "mlops-lab model list" in outcome.message


def test_window_holds_only_the_newest_predictions(own: Settings, own_log: Engine) -> None:
    champion = register_champion(own)
    log_predictions(
        own_log, own.model_name, data.generate(300, "unit_bug", seed=11), champion.version
    )
    log_predictions(
        own_log, own.model_name, data.generate(300, "baseline", seed=12), champion.version
    )
    outcome = DriftChecker(own, own_log).check()
    assert outcome.drift is not None
    assert outcome.drift.drifted_features == []


def test_reference_follows_the_champion_alias(own: Settings, own_log: Engine) -> None:
    first = register_champion(own, seed=1)
    checker = DriftChecker(own, own_log)
    log_predictions(own_log, own.model_name, data.generate(300, seed=11), first.version)
    assert checker.check().model_version == first.version
    second = register_champion(own, seed=2)
    assert checker.check().model_version == second.version


def test_feedback_labels_give_accuracy_and_auc(own: Settings, own_log: Engine) -> None:
    champion = register_champion(own)
    traffic = data.generate(300, seed=13)
    log_predictions(
        own_log, own.model_name, traffic, champion.version, champion.model, with_labels=True
    )
    outcome = DriftChecker(own, own_log).check()
    assert outcome.performance is not None
    assert outcome.performance.labelled_rows == 300
    assert outcome.performance.roc_auc is not None and outcome.performance.roc_auc > 0.7
    assert outcome.performance.accuracy is not None and outcome.performance.accuracy > 0.6


def test_mlflow_going_down_keeps_the_last_champions_reference(
    own: Settings, own_log: Engine
) -> None:
    champion = register_champion(own)
    log_predictions(
        own_log, own.model_name, data.generate(300, "unit_bug", seed=11), champion.version
    )
    checker = DriftChecker(own, own_log)
    assert checker.check().registry_reachable is True
    (closed,) = free_ports(1)
    # For this checker, MLflow answering on a dead port is MLflow being down.
    checker.champion.settings = own.model_copy(update={"mlflow_port": closed})
    outcome = checker.check()
    assert (outcome.status, outcome.registry_reachable) == (Status.OK, False)
    assert outcome.drift is not None and outcome.drift.drifted_features == ["annual_income"]
    assert f"cached reference of v{champion.version}" in outcome.message
