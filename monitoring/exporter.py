"""The drift monitor's Prometheus metrics (every one is documented in monitoring/README.md).

Metrics live in their own registry, so several monitors can exist in one process (tests) and the
exposition holds exactly what this file declares.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from monitoring.status import Status
from platform_core.settings import Settings

if TYPE_CHECKING:
    from monitoring.check import CheckOutcome
    from monitoring.drift import DriftResult
    from monitoring.performance import Performance
    from platform_core.rollout_analysis import Analysis

# Statuses after which the last drift verdict is still the best one there is: the data did not
# change, the monitor just could not look. Any other status replaces the verdict with "none".
_KEEP_VERDICT = frozenset(
    {Status.MLFLOW_UNREACHABLE, Status.PREDICTION_LOG_UNREACHABLE, Status.ERROR}
)


class DriftMetrics:
    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.feature_score = Gauge(
            "drift_feature_score",
            "Evidently drift score of a feature: a distance, larger means more different.",
            ["feature", "method"],
            registry=r,
        )
        self.feature_threshold = Gauge(
            "drift_feature_threshold",
            "Score at or above which a feature's distribution counts as drifted.",
            ["feature", "method"],
            registry=r,
        )
        self.feature_drifted = Gauge(
            "drift_feature_drifted",
            "1 if the feature drifted (distribution or missing share), else 0.",
            ["feature"],
            registry=r,
        )
        self.feature_missing = Gauge(
            "drift_feature_missing_ratio",
            "Share of missing values of a feature in the traffic window or the reference.",
            ["feature", "sample"],
            registry=r,
        )
        self.drifted_share = Gauge(
            "drift_drifted_features_ratio", "Share of features that drifted.", registry=r
        )
        self.share_threshold = Gauge(
            "drift_share_threshold_ratio",
            "Share of drifted features at which the dataset counts as drifted.",
            registry=r,
        )
        self.dataset_drifted = Gauge(
            "drift_dataset_drifted", "1 if the dataset drifted, else 0.", registry=r
        )
        self.window_rows = Gauge(
            "drift_window_rows", "Predictions in the traffic window of the last check.", registry=r
        )
        self.reference_rows = Gauge(
            "drift_reference_rows", "Rows in the champion's reference sample.", registry=r
        )
        self.model_version = Gauge(
            "drift_model_version",
            "Champion version whose reference sample the traffic is compared with.",
            ["model_name"],
            registry=r,
        )
        self.last_success = Gauge(
            "drift_last_success_timestamp_seconds",
            "When a check last finished in a healthy state (ok, not_enough_data, no_champion); "
            "the process start time until then.",
            registry=r,
        )
        self.duration = Histogram(
            "drift_check_duration_seconds",
            "Wall time of checks that computed drift (read window, Evidently, performance).",
            buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0),
            registry=r,
        )
        self.registry_reachable = Gauge(
            "drift_registry_reachable",
            "1 if MLflow answered during the last check, 0 if not (drift is then measured "
            "against the last champion seen).",
            registry=r,
        )
        self.checks = Counter(
            "drift_checks", "Checks run, by resulting status.", ["status"], registry=r
        )
        self.status = Gauge(
            "drift_check_status",
            "1 for the status of the last check, 0 for the others.",
            ["status"],
            registry=r,
        )
        self.labelled_rows = Gauge(
            "model_performance_labelled_rows",
            "Predictions with a feedback label in the window performance is measured on.",
            ["model_name"],
            registry=r,
        )
        self.accuracy = Gauge(
            "model_performance_accuracy_ratio",
            "Accuracy of the logged predictions against feedback labels.",
            ["model_name"],
            registry=r,
        )
        self.roc_auc = Gauge(
            "model_performance_roc_auc_ratio",
            "ROC AUC of the logged probabilities against feedback labels.",
            ["model_name"],
            registry=r,
        )
        self._declare_rollout(r)
        # Every series exists from the first scrape, so rates and alerts never see a gap.
        for status in Status:
            self.checks.labels(status=status.value)
            self.status.labels(status=status.value).set(0)
        self.share_threshold.set(settings.drift_share_threshold)
        self.last_success.set(time.time())

    def publish(self, outcome: CheckOutcome) -> None:
        model = self.settings.model_name
        self.checks.labels(status=outcome.status.value).inc()
        for status in Status:
            self.status.labels(status=status.value).set(1 if status == outcome.status else 0)
        if outcome.healthy:
            self.last_success.set_to_current_time()
        if outcome.registry_reachable is not None:
            self.registry_reachable.set(int(outcome.registry_reachable))
        if outcome.status in _KEEP_VERDICT:
            return
        self.window_rows.set(outcome.window_rows)
        self.model_version.clear()
        if outcome.model_version is not None and outcome.model_version.isdigit():
            self.model_version.labels(model_name=model).set(int(outcome.model_version))
        self._publish_drift(outcome.drift)
        if outcome.drift is not None:
            self.duration.observe(outcome.duration_s)
        self._publish_performance(outcome.performance)

    def _publish_drift(self, drift: DriftResult | None) -> None:
        for gauge in (
            self.feature_score,
            self.feature_threshold,
            self.feature_drifted,
            self.feature_missing,
        ):
            # A new champion may have other features: drop every series before writing.
            gauge.clear()
        if drift is None:
            for gauge in (self.drifted_share, self.dataset_drifted, self.reference_rows):
                gauge.set(math.nan)
            return
        for f in drift.features:
            if not math.isnan(f.score):
                self.feature_score.labels(feature=f.feature, method=f.method).set(f.score)
            self.feature_threshold.labels(feature=f.feature, method=f.method).set(f.threshold)
            self.feature_drifted.labels(feature=f.feature).set(int(f.drifted))
            self.feature_missing.labels(feature=f.feature, sample="current").set(f.missing_share)
            self.feature_missing.labels(feature=f.feature, sample="reference").set(
                f.reference_missing_share
            )
        self.drifted_share.set(drift.drifted_share)
        self.dataset_drifted.set(int(drift.dataset_drifted))
        self.reference_rows.set(drift.reference_rows)

    def _publish_performance(self, performance: Performance | None) -> None:
        model = self.settings.model_name
        for gauge in (self.labelled_rows, self.accuracy, self.roc_auc):
            gauge.clear()
        if performance is None:
            return
        self.labelled_rows.labels(model_name=model).set(performance.labelled_rows)
        if performance.accuracy is not None:
            self.accuracy.labels(model_name=model).set(performance.accuracy)
        if performance.roc_auc is not None:
            self.roc_auc.labels(model_name=model).set(performance.roc_auc)

    # ---- rollout analysis (platform_core.rollout_analysis) -------------------------------------

    def _declare_rollout(self, r: CollectorRegistry) -> None:
        by_version = ["model_version", "role"]
        self.rollout_in_progress = Gauge(
            "rollout_in_progress",
            "1 while a rollout candidate is tried beside the champion (the candidate alias "
            "exists), else 0.",
            registry=r,
        )
        self.rollout_age = Gauge(
            "rollout_age_seconds", "Time since the rollout in progress started.", registry=r
        )
        self.rollout_scored = Gauge(
            "rollout_scored_records",
            "Records each version scored since the rollout started, by role (champion, canary, "
            "shadow).",
            by_version,
            registry=r,
        )
        self.rollout_labelled = Gauge(
            "rollout_labelled_records",
            "Of those, records whose outcome came back through /feedback.",
            by_version,
            registry=r,
        )
        self.rollout_auc = Gauge(
            "rollout_roc_auc_ratio",
            "Live ROC AUC of each version on its labelled records since the rollout started "
            "(in shadow, on the records both versions scored).",
            by_version,
            registry=r,
        )
        self.rollout_auc_stderr = Gauge(
            "rollout_roc_auc_stderr_ratio",
            "Standard error of that AUC (DeLong).",
            by_version,
            registry=r,
        )
        self.rollout_auc_difference = Gauge(
            "rollout_roc_auc_difference_ratio",
            "Candidate's live ROC AUC minus the champion's (positive: the candidate ranks better).",
            registry=r,
        )
        self.rollout_auc_difference_stderr = Gauge(
            "rollout_roc_auc_difference_stderr_ratio",
            "Standard error of that difference: paired DeLong in shadow (same records), "
            "independent in a canary (different records).",
            registry=r,
        )
        self.rollout_agreement = Gauge(
            "rollout_shadow_agreement_ratio",
            "Share of shadow-scored records on which the candidate predicts the champion's class.",
            registry=r,
        )
        self.rollout_distance = Gauge(
            "rollout_shadow_score_distance_ratio",
            "Kolmogorov-Smirnov distance between the champion's and the shadow candidate's "
            "probabilities on the same records (0: same distribution, 1: disjoint).",
            registry=r,
        )
        self.rollout_in_progress.set(0)

    def publish_rollout(self, analysis: Analysis | None) -> None:
        """Export the analysis of the rollout in progress; with none, every rollout series but
        ``rollout_in_progress`` goes (a stale candidate's figures would mislead a panel)."""
        for gauge in (
            self.rollout_scored,
            self.rollout_labelled,
            self.rollout_auc,
            self.rollout_auc_stderr,
        ):
            gauge.clear()
        single = (
            self.rollout_age,
            self.rollout_auc_difference,
            self.rollout_auc_difference_stderr,
            self.rollout_agreement,
            self.rollout_distance,
        )
        for gauge in single:
            gauge.set(math.nan)
        self.rollout_in_progress.set(0 if analysis is None else 1)
        if analysis is None:
            return
        self.rollout_age.set(analysis.age_s)
        for figures in (analysis.champion, analysis.candidate):
            labels = {"model_version": figures.version, "role": figures.role}
            self.rollout_scored.labels(**labels).set(figures.scored)
            self.rollout_labelled.labels(**labels).set(figures.labelled)
            if figures.auc is not None:
                self.rollout_auc.labels(**labels).set(figures.auc)
            if figures.auc_stderr is not None:
                self.rollout_auc_stderr.labels(**labels).set(figures.auc_stderr)
        for gauge, value in (
            (self.rollout_auc_difference, analysis.auc_difference),
            (self.rollout_auc_difference_stderr, analysis.auc_difference_stderr),
            (self.rollout_agreement, analysis.agreement),
            (self.rollout_distance, analysis.score_distance),
        ):
            if value is not None:
                gauge.set(value)
