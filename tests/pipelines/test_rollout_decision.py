"""The automatic decision on a rollout, as a pure function of the live evidence and the rules.

Each case builds an Analysis as the analysis would and changes one figure from a rollout that
passes every rule, so each test shows which figure moves the decision and the reason it gives.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from pipelines.rollout_decision import ABORT, EXTEND, PROMOTE, Decision, Rules, decide
from platform_core.rollout import CANARY, SHADOW, Plan, Rollout
from platform_core.rollout_analysis import Analysis, VersionFigures

RULES = Rules(
    min_scored=500,
    min_labelled=200,
    max_error_ratio=1.5,
    error_rate_allowance=0.005,
    max_p99_ratio=1.5,
    p99_allowance_s=0.01,
    min_auc_difference=-0.005,
    auc_z=1.645,
    min_agreement=0.5,
    max_age_s=86_400.0,
)


def figures(role: str, **changes) -> VersionFigures:
    healthy = VersionFigures(
        version="2" if role != "champion" else "1",
        role=role,
        scored=1_000,
        labelled=400,
        auc=0.80,
        auc_stderr=0.01,
        requests=1_000.0,
        error_rate=0.01,
        p99_s=0.050,
    )
    return replace(healthy, **changes)


def analysis(mode: str = SHADOW, candidate: dict | None = None, **changes) -> Analysis:
    """A rollout two hours old whose candidate is better than the champion on every count."""
    plan = Plan(SHADOW) if mode == SHADOW else Plan.canary(10)
    healthy = Analysis(
        rollout=Rollout("2", plan, started_at="2026-12-05T08:00:00+00:00", started_by="test"),
        age_s=7_200.0,
        champion=figures("champion"),
        candidate=figures(mode, auc=0.82, **(candidate or {})),
        agreement=0.93 if mode == SHADOW else None,
        score_distance=0.05 if mode == SHADOW else None,
        auc_difference=0.02,
        auc_difference_stderr=0.005,
    )
    return replace(healthy, **changes)


def reasons(decision: Decision) -> str:
    return " | ".join(decision.reasons)


@pytest.mark.parametrize("mode", [SHADOW, CANARY])
def test_a_candidate_passing_every_rule_is_promoted(mode: str) -> None:
    decision = decide(analysis(mode), RULES)

    assert decision.action == PROMOTE, decision
    assert "lower bound clears it" in reasons(decision)


def test_promotion_reasons_name_each_figure_its_value_and_rule() -> None:
    text = reasons(decide(analysis(), RULES))

    assert "candidate scored 1000 records (MLOPS_LAB_ROLLOUT_MIN_SCORED=500)" in text
    assert "error rate within the limit: candidate 0.0100" in text
    assert "MLOPS_LAB_ROLLOUT_MAX_ERROR_RATIO" in text
    assert "p99 latency within the limit: candidate 0.050s" in text
    assert "agreement with the champion 0.930 (MLOPS_LAB_ROLLOUT_MIN_AGREEMENT=0.5)" in text
    assert "AUC difference +0.0200" in text and "MLOPS_LAB_ROLLOUT_MIN_AUC_DIFFERENCE" in text


def test_too_few_scored_records_extend_saying_how_many() -> None:
    decision = decide(analysis(candidate={"scored": 120}), RULES)

    assert decision.action == EXTEND
    assert "candidate scored 120 records, fewer than MLOPS_LAB_ROLLOUT_MIN_SCORED=500" in reasons(
        decision
    )


def test_too_few_requests_postpone_the_error_and_latency_rules() -> None:
    # Two failures in ten requests are no evidence yet; the same rate over 1,000 is.
    decision = decide(analysis(candidate={"requests": 10.0, "error_rate": 0.2}), RULES)

    assert decision.action == EXTEND
    assert "errors and latency: candidate had 10 requests, fewer than" in reasons(decision)


def test_an_error_rate_above_the_ratio_and_allowance_aborts() -> None:
    # Limit: 1.5 x 0.01 + 0.005 = 0.02.
    decision = decide(analysis(candidate={"error_rate": 0.021}), RULES)

    assert decision.action == ABORT
    assert reasons(decision).startswith("error rate too high: candidate 0.0210, limit 0.0200")


def test_the_allowance_keeps_a_few_errors_against_an_errorless_champion_from_aborting() -> None:
    decision = decide(
        analysis(champion=figures("champion", error_rate=0.0), candidate={"error_rate": 0.001}),
        RULES,
    )

    assert decision.action == PROMOTE, decision


def test_a_p99_above_the_ratio_and_allowance_aborts() -> None:
    # Limit: 1.5 x 0.05 + 0.01 = 0.085 s.
    decision = decide(analysis(candidate={"p99_s": 0.090}), RULES)

    assert decision.action == ABORT
    assert "p99 latency too high: candidate 0.090s, limit 0.085s" in reasons(decision)


@pytest.mark.parametrize(
    ("which", "field"),
    [("candidate", "error_rate"), ("champion", "error_rate"), ("candidate", "p99_s")],
)
def test_a_figure_prometheus_does_not_have_extends_saying_which(which: str, field: str) -> None:
    if which == "candidate":
        evidence = analysis(candidate={field: None})
    else:
        evidence = analysis(champion=figures("champion", **{field: None}))

    decision = decide(evidence, RULES)

    assert decision.action == EXTEND
    assert f"no figure for the {which} from Prometheus yet" in reasons(decision)


def test_no_request_figures_at_all_extend() -> None:
    decision = decide(analysis(candidate={"requests": None}), RULES)

    assert decision.action == EXTEND
    assert "Prometheus has no request figures for the candidate yet" in reasons(decision)


def test_a_shadow_candidate_contradicting_the_champion_aborts_before_any_outcome() -> None:
    decision = decide(
        analysis(agreement=0.3, auc_difference=None, auc_difference_stderr=None), RULES
    )

    assert decision.action == ABORT
    assert "agreement with the champion 0.300" in reasons(decision)
    assert "contradicts it too often" in reasons(decision)


def test_agreement_is_not_judged_in_a_canary() -> None:
    decision = decide(analysis(CANARY, agreement=0.1), RULES)

    assert decision.action == PROMOTE


def test_a_missing_agreement_in_shadow_extends() -> None:
    decision = decide(analysis(agreement=None), RULES)

    assert decision.action == EXTEND
    assert "agreement with the champion: no figure yet" in reasons(decision)


def test_an_agreement_minimum_of_zero_turns_the_rule_off() -> None:
    decision = decide(analysis(agreement=None), replace(RULES, min_agreement=0.0))

    assert decision.action == PROMOTE


def test_too_few_outcomes_extend_naming_the_version_short_of_them() -> None:
    decision = decide(analysis(candidate={"labelled": 50}), RULES)

    assert decision.action == EXTEND
    expected = "outcomes: shadow 50 labelled records, fewer than MLOPS_LAB_ROLLOUT_MIN_LABELLED=200"
    assert expected in reasons(decision)


def test_an_auc_difference_not_computable_extends() -> None:
    decision = decide(analysis(auc_difference=None, auc_difference_stderr=None), RULES)

    assert decision.action == EXTEND
    assert "AUC difference: not computable yet" in reasons(decision)


def test_an_auc_difference_whose_interval_straddles_the_minimum_extends() -> None:
    # +0.002 +- 1.645 x 0.02: [-0.0309, +0.0349] around the minimum -0.005.
    decision = decide(analysis(auc_difference=0.002, auc_difference_stderr=0.02), RULES)

    assert decision.action == EXTEND
    assert "[-0.0309, +0.0349]" in reasons(decision)
    assert "straddles it" in reasons(decision)


def test_an_auc_difference_whose_upper_bound_is_below_the_minimum_aborts() -> None:
    # -0.04 + 1.645 x 0.01 = -0.0236 < -0.005.
    decision = decide(analysis(auc_difference=-0.04, auc_difference_stderr=0.01), RULES)

    assert decision.action == ABORT
    assert "even the upper bound is below it" in reasons(decision)


def test_a_slightly_worse_candidate_within_the_allowed_difference_is_promoted() -> None:
    # -0.002 - 1.645 x 0.001 = -0.0036, above the minimum -0.005: no worse, within the rule.
    decision = decide(analysis(auc_difference=-0.002, auc_difference_stderr=0.001), RULES)

    assert decision.action == PROMOTE


def test_a_failure_aborts_even_while_other_rules_wait() -> None:
    decision = decide(analysis(candidate={"error_rate": 0.5, "labelled": 3}), RULES)

    assert decision.action == ABORT
    assert decision.reasons == tuple(r for r in decision.reasons if "too high" in r)


def test_a_rollout_still_waiting_past_the_age_limit_is_aborted_with_no_decision() -> None:
    decision = decide(analysis(age_s=90_000.0, candidate={"labelled": 50}), RULES)

    assert decision.action == ABORT
    assert decision.reasons[0].startswith("no decision within 1d (MLOPS_LAB_ROLLOUT_MAX_AGE_S")
    assert "outcomes: shadow 50 labelled records" in reasons(decision)


def test_a_rollout_past_the_age_limit_with_the_evidence_complete_is_promoted() -> None:
    decision = decide(analysis(age_s=90_000.0), RULES)

    assert decision.action == PROMOTE


def test_rules_come_from_the_settings() -> None:
    from platform_core.settings import Settings

    settings = Settings(rollout_min_scored=7, rollout_max_age_s=60)

    rules = Rules.of(settings)

    assert (rules.min_scored, rules.max_age_s) == (7, 60)
