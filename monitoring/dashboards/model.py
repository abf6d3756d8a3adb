"""Model: which version is champion, how it performs on labelled traffic, and retraining."""

from __future__ import annotations

from monitoring.grafana_json import Dashboard, Panel, Query, Row
from platform_core.settings import Settings


def dashboard(settings: Settings) -> Dashboard:
    champion = Row(
        "Champion",
        (
            Panel(
                "Champion version (served)",
                "What serving answers with.",
                (Query("serving_model_version", "{{model_name}}"),),
                kind="stat",
                width=6,
                height=5,
            ),
            Panel(
                "Champion version (monitored)",
                "Whose reference sample the drift monitor compares traffic with.",
                (Query("drift_model_version", "{{model_name}}"),),
                kind="stat",
                width=6,
                height=5,
            ),
            Panel(
                "Champion over time",
                "A step is a promotion or a rollback.",
                (
                    Query("serving_model_version", "served"),
                    Query("drift_model_version", "monitored"),
                ),
                stepped=True,
            ),
        ),
    )
    performance = Row(
        "Performance from feedback",
        (
            Panel(
                "Live ROC AUC and accuracy",
                "Measured on predictions whose true outcome came back as feedback. The red line "
                "is the floor every champion must pass (ModelPerformanceDegraded).",
                (
                    Query("model_performance_roc_auc_ratio", "ROC AUC"),
                    Query("model_performance_accuracy_ratio", "accuracy"),
                ),
                unit="percentunit",
                threshold=settings.gate_min_auc,
                minimum=0,
                maximum=1,
            ),
            Panel(
                "Labelled predictions",
                f"Predictions with feedback in the window; performance needs "
                f"{settings.performance_min_labels}.",
                (Query("model_performance_labelled_rows", "labelled"),),
            ),
        ),
    )
    retrains = Row(
        "Retraining",
        (
            Panel(
                "Retrain decisions (1h)",
                "What the alert receiver did with retrain alerts: started, duplicate, cooldown, "
                "failed, resolved.",
                (
                    Query(
                        "sum by (decision) (increase(alert_receiver_retrain_decisions_total[1h]))",
                        "{{decision}}",
                    ),
                ),
                stepped=True,
            ),
            Panel(
                "Alerts that start a retrain",
                "Pending and firing alerts labelled action=retrain.",
                (
                    Query(
                        'sum by (alertname, alertstate) (ALERTS{action="retrain"})',
                        "{{alertname}} {{alertstate}}",
                    ),
                ),
                stepped=True,
            ),
        ),
    )
    return Dashboard(
        uid="mlops-lab-model",
        title="mlops-lab / Model",
        description="Which model is champion, how it performs on labelled traffic, retrains.",
        rows=(champion, performance, retrains),
    )
