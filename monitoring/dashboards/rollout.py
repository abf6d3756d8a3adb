"""Rollout: a candidate beside the champion, version by version (`mlops-lab rollout`).

Errors and latency come from serving's metrics through the rollout recording rules
(:func:`monitoring.rules.rollout_rules`); agreement, score distance and live AUC from the drift
monitor's rollout analysis (``rollout_*``, :mod:`platform_core.rollout_analysis`). Outside a
rollout the panels are empty: there is nothing to compare.
"""

from __future__ import annotations

from monitoring import rules
from monitoring.grafana_json import Dashboard, Panel, Query, Row
from platform_core.settings import Settings

_BY_VERSION = "v{{model_version}} {{role}}"


def dashboard(settings: Settings) -> Dashboard:
    window = rules.rate_window(settings)
    state = Row(
        "Rollout",
        (
            Panel(
                "Candidate version",
                "The version tried beside the champion, as serving has loaded it (0: none).",
                (Query("serving_candidate_version", "candidate"),),
                kind="stat",
                width=6,
                height=5,
            ),
            Panel(
                "Canary share",
                "Share of requests the candidate answers (0 in shadow: it answers none).",
                (Query("serving_canary_percent", "canary"),),
                kind="stat",
                unit="percent",
                width=6,
                height=5,
            ),
            Panel(
                "Rollout age",
                "Time since the rollout started (from its rollout_started_at tag).",
                (Query("rollout_age_seconds", "age"),),
                kind="stat",
                unit="s",
                width=6,
                height=5,
            ),
            Panel(
                "Records scored since the start",
                "Per version and role, from the prediction log; labelled: with an outcome.",
                (
                    Query("rollout_scored_records", f"{_BY_VERSION} scored"),
                    Query("rollout_labelled_records", f"{_BY_VERSION} labelled"),
                ),
                width=6,
                height=5,
            ),
        ),
    )
    errors = Row(
        "Errors and latency by version",
        (
            Panel(
                "Error ratio by version",
                f"Share of each version's requests it failed to score over {window} (in shadow, "
                "the candidate's scorings). The red line is the floor under which "
                "RolloutCandidateErrorRateHigh never fires.",
                (Query(rules.VERSION_ERROR_RATIO, _BY_VERSION),),
                unit="percentunit",
                threshold=settings.alert_rollout_error_floor,
                minimum=0,
            ),
            Panel(
                "Candidate error ratio / champion's",
                "Above the red line for long, RolloutCandidateErrorRateHigh fires (if the "
                "candidate's ratio is also above the floor).",
                (Query(rules.CANDIDATE_ERROR_RATIO_TO_CHAMPION, "candidate / champion"),),
                threshold=settings.alert_rollout_error_factor,
                minimum=0,
            ),
            Panel(
                "p99 latency by version",
                f"/predict's p99 by the version that answered, and the p99 time in the model "
                f"(a shadow candidate's only latency), over {window}. The red line is the SLO.",
                (
                    Query(rules.VERSION_LATENCY_P99, "v{{model_version}} answer"),
                    Query(rules.VERSION_SCORING_P99, "v{{model_version}} model"),
                ),
                unit="s",
                threshold=settings.alert_latency_p99_s,
                minimum=0,
            ),
            Panel(
                "Candidate p99 / champion's",
                "A canary's p99 latency as a multiple of the champion's (1: as fast).",
                (Query(rules.CANDIDATE_LATENCY_P99_TO_CHAMPION, "candidate / champion"),),
                minimum=0,
            ),
        ),
    )
    shadow = Row(
        "Shadow: the same records, both versions",
        (
            Panel(
                "Agreement with the champion",
                "Share of records on which the shadow candidate predicts the champion's class. "
                "Below the red line for long, RolloutShadowDisagreement fires.",
                (Query("rollout_shadow_agreement_ratio", "agreement"),),
                unit="percentunit",
                threshold=settings.alert_shadow_agreement_min,
                minimum=0,
                maximum=1,
            ),
            Panel(
                "Score distance",
                "Kolmogorov-Smirnov distance between the two versions' probabilities on the same "
                "records: 0 is the same distribution, 1 none in common.",
                (Query("rollout_shadow_score_distance_ratio", "KS distance"),),
                minimum=0,
                maximum=1,
            ),
        ),
    )
    performance = Row(
        "Live performance from feedback",
        (
            Panel(
                "Live ROC AUC by version",
                "On records whose outcome came back since the rollout started (in shadow, the "
                "records both versions scored). The red line is the floor every champion must "
                "pass.",
                (Query("rollout_roc_auc_ratio", _BY_VERSION),),
                unit="percentunit",
                threshold=settings.gate_min_auc,
                minimum=0,
                maximum=1,
            ),
            Panel(
                "AUC difference, candidate - champion",
                "With its 95% interval (1.96 standard errors, paired in shadow): an interval "
                "above 0 says the candidate ranks better, one across 0 that it is too early.",
                (
                    Query("rollout_roc_auc_difference_ratio", "difference"),
                    Query(
                        "rollout_roc_auc_difference_ratio"
                        " - 1.96 * rollout_roc_auc_difference_stderr_ratio",
                        "lower 95%",
                    ),
                    Query(
                        "rollout_roc_auc_difference_ratio"
                        " + 1.96 * rollout_roc_auc_difference_stderr_ratio",
                        "upper 95%",
                    ),
                ),
            ),
        ),
    )
    return Dashboard(
        uid="mlops-lab-rollout",
        title="mlops-lab / Rollout",
        description="A candidate beside the champion: errors, latency, agreement, live AUC.",
        rows=(state, errors, shadow, performance),
    )
