"""The rollout-decision rules in the settings: sound defaults, and a value that would make a rule
meaningless is refused naming its variable."""

from __future__ import annotations

import pytest

from platform_core.errors import PlatformError
from platform_core.settings import Settings, get_settings


def test_the_defaults_promote_only_on_evidence() -> None:
    defaults = Settings.model_construct()

    assert defaults.rollout_min_scored >= 100
    assert defaults.rollout_min_labelled >= 100
    assert defaults.rollout_max_error_ratio >= 1 and defaults.rollout_max_p99_ratio >= 1
    assert defaults.rollout_auc_z > 0
    assert defaults.rollout_max_age_s > defaults.rollout_check_interval_s


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MLOPS_LAB_ROLLOUT_CHECK_INTERVAL_S", "0"),
        ("MLOPS_LAB_ROLLOUT_MIN_SCORED", "0"),
        ("MLOPS_LAB_ROLLOUT_MIN_LABELLED", "0"),
        # Below 1 the candidate would have to be better than the champion at errors to pass.
        ("MLOPS_LAB_ROLLOUT_MAX_ERROR_RATIO", "0.5"),
        ("MLOPS_LAB_ROLLOUT_ERROR_RATE_ALLOWANCE", "-0.01"),
        ("MLOPS_LAB_ROLLOUT_MAX_P99_RATIO", "0.9"),
        ("MLOPS_LAB_ROLLOUT_MIN_AUC_DIFFERENCE", "2"),
        ("MLOPS_LAB_ROLLOUT_AUC_Z", "-1"),
        ("MLOPS_LAB_ROLLOUT_MIN_AGREEMENT", "1.5"),
        ("MLOPS_LAB_ROLLOUT_MAX_AGE_S", "0"),
    ],
)
def test_a_rule_out_of_its_range_is_refused_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.delenv("MLOPS_LAB_SERVICE", raising=False)
    monkeypatch.setenv(variable, value)

    with pytest.raises(PlatformError, match=variable):
        get_settings()


def test_a_short_check_interval_is_allowed_for_tests_and_benchmarks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MLOPS_LAB_SERVICE", raising=False)
    monkeypatch.setenv("MLOPS_LAB_ROLLOUT_CHECK_INTERVAL_S", "2")

    assert get_settings().rollout_check_interval_s == 2
