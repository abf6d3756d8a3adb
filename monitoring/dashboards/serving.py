"""Serving: traffic, errors and latency of the BentoML service, and the model it serves."""

from __future__ import annotations

from monitoring import rules
from monitoring.grafana_json import Dashboard, Panel, Query, Row
from platform_core.settings import Settings

RATE = "$__rate_interval"
_REQUESTS = "bentoml_service_request_total"


def _latency(quantile: float, window: str) -> Query:
    # The alert's own expression: the p99 line is exactly what ServingLatencySLOBreached compares.
    return Query(rules.serving_latency(quantile, window), f"p{round(quantile * 100)}")


def dashboard(settings: Settings) -> Dashboard:
    window = rules.rate_window(settings)
    traffic = Row(
        "Traffic",
        (
            Panel(
                "Requests per second",
                "HTTP requests answered by the BentoML service, by endpoint and status code.",
                (
                    Query(
                        f"sum by (endpoint, http_response_code) (rate({_REQUESTS}[{RATE}]))",
                        "{{endpoint}} {{http_response_code}}",
                    ),
                ),
                unit="reqps",
            ),
            Panel(
                "Server error ratio (5xx)",
                f"Share of /predict and /feedback requests answered with a 5xx over "
                f"{window}, as ServingErrorRateHigh computes it (the red line is its "
                "threshold). Bad input is a 4xx; probes and scrapes are not counted.",
                (Query(rules.serving_error_ratio(window), "5xx ratio"),),
                unit="percentunit",
                threshold=settings.alert_error_ratio,
                minimum=0,
            ),
            Panel(
                "Latency of /predict",
                f"Quantiles of request duration over {window}; the red line is the "
                "p99 SLO (ServingLatencySLOBreached).",
                (_latency(0.5, window), _latency(0.9, window), _latency(0.99, window)),
                unit="s",
                threshold=settings.alert_latency_p99_s,
                minimum=0,
            ),
            Panel(
                "Rejected input by field",
                "Validation failures (answered 4xx), by field and reason.",
                (
                    Query(
                        f"sum by (field, reason) (rate(serving_validation_failures_total[{RATE}]))",
                        "{{field}}: {{reason}}",
                    ),
                ),
                unit="reqps",
            ),
        ),
    )
    by_version = Row(
        "Latency by model version",
        (
            Panel(
                "p99 latency by model version",
                f"99th percentile of /predict over {window}, for each model version that "
                "answered: a new version slower than its predecessor shows as a new, higher "
                "line; every version slow at once points at the server. Red line: the SLO.",
                (
                    Query(
                        rules.serving_latency_by_version(0.99, window),
                        "v{{model_version}}",
                    ),
                ),
                unit="s",
                threshold=settings.alert_latency_p99_s,
                minimum=0,
            ),
            Panel(
                "p99 time in the model by version",
                f"99th percentile of one model call (a batch) over {window}. Close to the "
                "latency beside it: the model is what is slow. Far below it: requests wait "
                "somewhere else in serving.",
                (
                    Query(
                        rules.serving_latency_by_version(0.99, window, scoring=True),
                        "v{{model_version}}",
                    ),
                ),
                unit="s",
                threshold=settings.alert_latency_p99_s,
                minimum=0,
            ),
        ),
    )
    model = Row(
        "Model",
        (
            Panel(
                "Served model version",
                "The registry version serving answers with; it follows the champion alias.",
                (Query("serving_model_version", "{{model_name}}"),),
                stepped=True,
            ),
            Panel(
                "Predictions by class",
                "Predicted classes per second: a sudden change is often the first sign of drift.",
                (
                    Query(
                        f"sum by (predicted_class) (rate(serving_predictions_total[{RATE}]))",
                        "class {{predicted_class}}",
                    ),
                ),
                unit="reqps",
            ),
            Panel(
                "Model registry reachable",
                "1 while serving can reach MLflow. At 0 it keeps serving the last good model.",
                (Query("serving_registry_reachable", "reachable"),),
                kind="stat",
                width=8,
                height=5,
                mappings=(("0", "unreachable"), ("1", "reachable")),
            ),
            Panel(
                "Prediction log queue",
                "Records waiting to be written to the prediction log.",
                (Query("serving_prediction_log_queue_depth", "queued"),),
                kind="stat",
                width=8,
                height=5,
            ),
            Panel(
                "Prediction log records dropped (1h)",
                "Records lost because the queue was full; anything above 0 needs a look.",
                (Query("increase(serving_prediction_log_dropped_total[1h])", "dropped"),),
                kind="stat",
                width=8,
                height=5,
                threshold=1,
            ),
        ),
    )
    callers = Row(
        "Callers and series",
        (
            Panel(
                "Requests by calling application",
                "API requests per second by the application that sent them: the callers "
                "serving knows by name, any other as `other`, none as `unknown` "
                "(serving/README.md).",
                (
                    Query(
                        f"sum by (caller) (rate(serving_caller_requests_total[{RATE}]))",
                        "{{caller}}",
                    ),
                ),
                unit="reqps",
            ),
            Panel(
                "Series each target exports",
                "Samples in each scrape, by job: flat for a healthy target. One that keeps "
                "climbing has a label taking new values (TargetSeriesGrowing fires on it); "
                "Prometheus keeps every series it has seen for hours.",
                (Query("sum by (job) (scrape_samples_scraped)", "{{job}}"),),
                minimum=0,
            ),
        ),
    )
    return Dashboard(
        uid="mlops-lab-serving",
        title="mlops-lab / Serving",
        description="The BentoML service: traffic, errors, latency and the model it serves.",
        rows=(traffic, by_version, model, callers),
    )
