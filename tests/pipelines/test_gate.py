"""The quality gate's rules, as numbers in and a decision with its reason out."""

from __future__ import annotations

from pipelines.gate import decide, schema_difference
from platform_core.contract import FeatureTypes


def test_first_model_needs_only_the_floor() -> None:
    decision = decide(0.75, min_auc=0.7, margin=0.01)

    assert decision.promote
    assert "first model" in decision.reason


def test_first_model_below_the_floor_is_rejected() -> None:
    decision = decide(0.65, min_auc=0.7, margin=0.01)

    assert not decision.promote
    assert "below the floor 0.700" in decision.reason


def test_challenger_winning_by_the_margin_is_promoted() -> None:
    decision = decide(0.82, min_auc=0.7, margin=0.01, champion_version="3", champion_auc=0.80)

    assert decision.promote
    assert "beats champion v3 by 0.0200" in decision.reason


def test_challenger_winning_by_less_than_the_margin_is_rejected() -> None:
    decision = decide(0.805, min_auc=0.7, margin=0.01, champion_version="3", champion_auc=0.80)

    assert not decision.promote
    assert "does not beat champion v3 by the margin 0.010" in decision.reason


def test_challenger_beating_a_weak_champion_still_needs_the_floor() -> None:
    decision = decide(0.66, min_auc=0.7, margin=0.01, champion_version="3", champion_auc=0.60)

    assert not decision.promote
    assert "below the floor" in decision.reason


def test_same_inputs_have_no_schema_difference() -> None:
    types = FeatureTypes({"a": "numeric", "b": "categorical"}, "y")

    assert schema_difference(types, FeatureTypes(dict(types.kinds), "y")) is None


def test_schema_difference_names_dropped_added_and_retyped_features() -> None:
    champion = FeatureTypes({"a": "numeric", "b": "categorical"}, "y")
    challenger = FeatureTypes({"a": "categorical", "c": "numeric"}, "y")

    difference = schema_difference(champion, challenger)

    assert difference == (
        "features dropped: b; features added: c; features retyped: a (numeric -> categorical)"
    )
