"""Drift: the monitor's verdict, per-feature scores, drift alerts and the monitor itself."""

from __future__ import annotations

from monitoring.grafana_json import Dashboard, Panel, Query, Row
from platform_core.settings import Settings


def dashboard(settings: Settings) -> Dashboard:
    verdict = Row(
        "Verdict",
        (
            Panel(
                "Dataset drift",
                "1 when the share of drifted features reaches the threshold; DataDriftDetected "
                "fires (and a retrain starts) when it lasts.",
                (Query("drift_dataset_drifted", "dataset drift"),),
                kind="stat",
                width=6,
                height=5,
                threshold=1,
                mappings=(("0", "no drift"), ("1", "DRIFT")),
            ),
            Panel(
                "Share of features drifted",
                "Drifted features / all features in the last check.",
                (Query("drift_drifted_features_ratio", "share"),),
                kind="stat",
                unit="percentunit",
                width=6,
                height=5,
                threshold=settings.drift_share_threshold,
            ),
            Panel(
                "Last check",
                "Status of the monitor's last check (ok, not_enough_data, no_champion, ...).",
                (Query("drift_check_status == 1", "{{status}}"),),
                kind="stat",
                width=6,
                height=5,
            ),
            Panel(
                "Since last healthy check",
                "DriftMonitorStale fires when this exceeds three check intervals.",
                (Query("time() - drift_last_success_timestamp_seconds", "age"),),
                kind="stat",
                unit="s",
                width=6,
                height=5,
            ),
        ),
    )
    features = Row(
        "Features",
        (
            Panel(
                "Drift score relative to threshold",
                "Each feature's Evidently score divided by its threshold: above 1 it drifted.",
                (
                    Query(
                        "drift_feature_score / on (job, instance, feature, method) "
                        "drift_feature_threshold",
                        "{{feature}}",
                    ),
                ),
                threshold=1,
                minimum=0,
            ),
            Panel(
                "Drift score",
                "Normed Wasserstein distance (numeric) or Jensen-Shannon distance (categorical).",
                (Query("drift_feature_score", "{{feature}} ({{method}})"),),
                minimum=0,
            ),
            Panel(
                "Drifted features",
                "1 while a feature is flagged (distribution or missing share).",
                (Query("drift_feature_drifted", "{{feature}}"),),
                stepped=True,
                minimum=0,
                maximum=1,
            ),
            Panel(
                "Missing values in traffic",
                "Share of missing values per feature in the traffic window.",
                (Query('drift_feature_missing_ratio{sample="current"}', "{{feature}}"),),
                unit="percentunit",
                minimum=0,
            ),
            Panel(
                "Inputs outside the training range",
                "Rate of accepted inputs whose value lies outside the range the champion was "
                "trained on, by feature (serving counts them): often the first sign of drift, "
                "before a whole window has moved.",
                (
                    Query(
                        "sum by (feature) (rate(serving_input_out_of_range_total[5m]))",
                        "{{feature}}",
                    ),
                ),
                unit="reqps",
                minimum=0,
                width=24,
            ),
        ),
    )
    monitor = Row(
        "Alerts and monitor",
        (
            Panel(
                "Share drifted vs threshold",
                "The dataset drifts when the share reaches the threshold.",
                (
                    Query("drift_drifted_features_ratio", "share drifted"),
                    Query("drift_share_threshold_ratio", "threshold"),
                ),
                unit="percentunit",
                minimum=0,
                maximum=1,
            ),
            Panel(
                "Drift alerts",
                "Pending and firing drift alerts (Prometheus' ALERTS series).",
                (
                    Query(
                        'sum by (alertname, alertstate) (ALERTS{alertname=~".*Drift.*"})',
                        "{{alertname}} {{alertstate}}",
                    ),
                ),
                stepped=True,
            ),
            Panel(
                "Traffic window",
                "Predictions compared with the reference in each check.",
                (
                    Query("drift_window_rows", "window"),
                    Query("drift_reference_rows", "reference"),
                ),
            ),
            Panel(
                "Check duration",
                "Mean wall time of checks that computed drift, over 5 minutes.",
                (
                    Query(
                        "rate(drift_check_duration_seconds_sum[5m]) "
                        "/ rate(drift_check_duration_seconds_count[5m])",
                        "mean",
                    ),
                ),
                unit="s",
                minimum=0,
            ),
        ),
    )
    return Dashboard(
        uid="mlops-lab-drift",
        title="mlops-lab / Drift",
        description="Evidently drift between live traffic and the champion's training data.",
        rows=(verdict, features, monitor),
    )
