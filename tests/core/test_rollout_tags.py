"""A rollout's tags are read safely: tags set by hand that make no sense try the candidate in
shadow, where it answers nobody, and say what was wrong."""

from __future__ import annotations

import pytest

from platform_core.rollout import (
    CANARY,
    SHADOW,
    TAG_MODE,
    TAG_PERCENT,
    Plan,
    check_percent,
    plan_from_tags,
)


def test_the_tags_a_plan_writes_read_back_as_the_same_plan() -> None:
    for plan in (Plan(SHADOW), Plan.canary(12.5), Plan.canary(100)):
        assert plan_from_tags(plan.tags()) == (plan, None)


@pytest.mark.parametrize(
    ("tags", "problem"),
    [
        ({}, "no rollout_mode tag"),
        ({TAG_MODE: "blue-green"}, "rollout_mode='blue-green'"),
        ({TAG_MODE: CANARY}, "rollout_percent=''"),
        ({TAG_MODE: CANARY, TAG_PERCENT: "ten"}, "rollout_percent='ten'"),
        ({TAG_MODE: CANARY, TAG_PERCENT: "150"}, "rollout_percent='150'"),
        ({TAG_MODE: CANARY, TAG_PERCENT: "nan"}, "rollout_percent='nan'"),
    ],
)
def test_unusable_tags_mean_shadow_and_say_why(tags: dict[str, str], problem: str) -> None:
    plan, found = plan_from_tags(tags)
    assert plan == Plan(SHADOW)
    assert found is not None and problem in found


@pytest.mark.parametrize("percent", [0, -5, 100.5, float("inf")])
def test_a_canary_share_is_more_than_0_and_at_most_100(percent: float) -> None:
    with pytest.raises(ValueError, match="more than 0 and at most 100 percent"):
        check_percent(percent)
