"""Prometheus alert rules, rendered from the settings.

Thresholds and ``for:`` durations come from :mod:`platform_core.settings`, so the rules cannot
disagree with the monitor or with the serving SLO. ``make monitoring-assets`` writes the
rendering for the default settings to ``monitoring/prometheus/rules/mlops-lab.yml``: that file is
what ``promtool test rules`` checks and what the kind runtime will wrap in a PrometheusRule; a
test proves it is current. The local runtime renders the effective settings into its run dir on
every ``up`` (tests use seconds where the defaults use minutes).

Routing is by label: alerts with ``action: retrain`` go to the retrain receiver, all others to the
logging receiver (see :func:`monitoring.configs.alertmanager_config`).
"""

from __future__ import annotations

from pathlib import Path

from platform_core.settings import Settings

MONITORING_DIR = Path(__file__).resolve().parent
COMMITTED_RULES = MONITORING_DIR / "prometheus" / "rules" / "mlops-lab.yml"
RULE_TESTS_DIR = MONITORING_DIR / "prometheus" / "tests"

# Window for request rates in serving alerts, by default (``alert_rate_window_s``): long enough
# to smooth a burst, short enough to page while the problem is still happening.
RATE_WINDOW = "5m"
# Failed checks before the monitor counts as stale.
STALE_AFTER_INTERVALS = 3

_REQUESTS = "bentoml_service_request_total"
_DURATION_BUCKETS = "bentoml_service_request_duration_seconds_bucket"
_LATENCY_BY_VERSION = "serving_prediction_latency_seconds_bucket"
_SCORING_BY_VERSION = "serving_model_scoring_seconds_bucket"
# Only the API counts: probes and scrapes are requests too, and /readyz answers 503 by design
# until a champion exists.
API_ENDPOINTS = 'endpoint=~"/predict|/feedback"'


def rate_window(settings: Settings) -> str:
    """The serving alerts' window in PromQL duration syntax (``5m`` by default)."""
    return duration(settings.alert_rate_window_s)


def serving_error_ratio(window: str = RATE_WINDOW) -> str:
    """Share of API requests answered with a 5xx over ``window``: the alert and its panel.

    Until the first 5xx there is no 5xx series; ``or ... * 0`` makes that a ratio of 0 (the
    panel shows 0%, not "No data"), and 0 never crosses the alert's threshold.
    """
    api = f"{_REQUESTS}{{{API_ENDPOINTS}}}"
    failed = f'{_REQUESTS}{{{API_ENDPOINTS}, http_response_code=~"5.."}}'
    return (
        f"(\n  sum by (job) (rate({failed}[{window}]))\n"
        f"  or sum by (job) (rate({api}[{window}])) * 0\n)\n"
        f"  / sum by (job) (rate({api}[{window}]))"
    )


def serving_latency(quantile: float = 0.99, window: str = RATE_WINDOW) -> str:
    """A quantile of /predict's duration over ``window``; the p99 is the SLO alert's."""
    return (
        f"histogram_quantile({quantile:g},\n"
        f'  sum by (job, le) (rate({_DURATION_BUCKETS}{{endpoint="/predict"}}[{window}]))\n'
        ")"
    )


def serving_latency_by_version(
    quantile: float = 0.99,
    window: str = RATE_WINDOW,
    scoring: bool = False,
    version: str | None = None,
) -> str:
    """A quantile of /predict's latency per model version over ``window`` (serving's own
    histogram, so a version's requests are told apart from its predecessor's); with ``scoring``,
    of the model calls alone: the model's share of that latency. ``version`` keeps one."""
    buckets = _SCORING_BY_VERSION if scoring else _LATENCY_BY_VERSION
    selector = f'{{model_version="{version}"}}' if version is not None else ""
    return (
        f"histogram_quantile({quantile:g},\n"
        f"  sum by (job, model_version, le) (rate({buckets}{selector}[{window}]))\n"
        ")"
    )


def duration(seconds: float) -> str:
    """Prometheus duration syntax: ``5m``, ``90s``; anything finer than a second in ``ms``."""
    if not float(seconds).is_integer():
        return f"{round(seconds * 1000)}ms"
    whole = int(seconds)
    for unit, size in (("h", 3600), ("m", 60)):
        if whole and whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def stale_after_s(settings: Settings) -> float:
    return STALE_AFTER_INTERVALS * settings.drift_interval_s


def _alert(
    name: str, expr: str, for_s: float, labels: dict[str, str], summary: str, description: str
) -> dict:
    return {
        "alert": name,
        "expr": expr,
        "for": duration(for_s),
        "labels": labels,
        "annotations": {"summary": summary, "description": description},
    }


def model_rules(settings: Settings) -> dict:
    """Alerts that mean the model may no longer fit its traffic: they start a retrain."""
    retrain = {"severity": "warning", "action": "retrain"}
    return {
        "name": "mlops-lab-model",
        "rules": [
            _alert(
                "DataDriftDetected",
                "drift_drifted_features_ratio and drift_dataset_drifted == 1",
                settings.drift_alert_for_s,
                retrain,
                "{{ $value | humanizePercentage }} of the model's features drifted",
                "The drift monitor compares the newest predictions with the champion's reference "
                f"sample; at least {settings.drift_share_threshold:.0%} of the features drifted "
                "(drift_feature_drifted). A retrain on recent traffic starts; "
                "`mlops-lab drift check` shows the per-feature table.",
            ),
            _alert(
                "ModelPerformanceDegraded",
                f"model_performance_roc_auc_ratio < {settings.gate_min_auc}",
                settings.drift_alert_for_s,
                retrain,
                'Live ROC AUC of {{ $labels.model_name }} is {{ $value | printf "%.3f" }}',
                "Measured on predictions with feedback labels; below the floor every champion "
                f"must pass ({settings.gate_min_auc}). A retrain on recent labelled traffic "
                "starts.",
            ),
            _alert(
                "FeatureDriftDetected",
                "drift_feature_drifted == 1",
                settings.drift_alert_for_s,
                {"severity": "info"},
                "Feature {{ $labels.feature }} drifted",
                "One feature's distribution or missing share moved away from the reference. On "
                "its own this is often an upstream data bug (a unit change, an empty field): fix "
                "the source rather than retrain on it.",
            ),
        ],
    }


def platform_rules(settings: Settings) -> dict:
    """Alerts about the platform itself: they are logged by the receiver, nothing is started."""
    page = {"severity": "critical"}
    window = rate_window(settings)
    errors = f"{serving_error_ratio(window)}\n  > {settings.alert_error_ratio}"
    latency = f"{serving_latency(0.99, window)} > {settings.alert_latency_p99_s}"
    stale = (
        f"(time() - drift_last_success_timestamp_seconds > {stale_after_s(settings):g})\n"
        "  * on (job, instance) group_left (status) (drift_check_status == 1)"
    )
    return {
        "name": "mlops-lab-platform",
        "rules": [
            _alert(
                "ServingErrorRateHigh",
                errors,
                settings.alert_for_s,
                page,
                "{{ $value | humanizePercentage }} of serving requests fail with a 5xx",
                f"More than {settings.alert_error_ratio:.0%} of requests over {window} "
                "answered 5xx. Bad input is a 4xx, so this is the service: "
                "`mlops-lab logs serving`.",
            ),
            _alert(
                "ServingLatencySLOBreached",
                latency,
                settings.alert_for_s,
                page,
                "Serving p99 latency is {{ $value | humanizeDuration }}",
                f"The 99th percentile of /predict over {window} is above the "
                f"{settings.alert_latency_p99_s}s SLO. Which version, and whether the time is "
                "in the model: the Serving dashboard's latency by model version.",
            ),
            _alert(
                "DriftMonitorStale",
                stale,
                settings.drift_interval_s,
                {"severity": "warning"},
                "No healthy drift check for {{ $value | humanizeDuration }}",
                f"The drift monitor checks every {settings.drift_interval_s:g}s; its last "
                "check ended with status {{ $labels.status }}. Drift alerts are blind until "
                "it recovers: `mlops-lab logs drift-monitor`.",
            ),
            _alert(
                "ServingModelRefused",
                "max by (job, instance) (serving_model_refused) > 0",
                settings.alert_for_s,
                {"severity": "warning"},
                "Serving refused to load v{{ $value }}, the champion",
                "The champion alias points at a model the platform does not trust (not skops, or "
                "a type outside the trust list in platform_core/model_trust.py); serving keeps "
                "answering with the last good model. `mlops-lab logs serving` says why; "
                "`mlops-lab model rollback` moves the alias back.",
            ),
            _alert(
                "ServingChampionLoadFailed",
                "max by (job, instance) (serving_champion_load_failed) > 0",
                settings.alert_for_s,
                {"severity": "warning"},
                "Serving cannot load v{{ $value }}, the champion",
                "The champion alias points at a version serving fails to load, so it keeps "
                "answering with the model it had: the registry and what answers disagree, and "
                "a restart would leave serving with nothing to load. `mlops-lab logs serving` "
                "says why the load fails.",
            ),
            _alert(
                "ServingFeatureTransformsInvalid",
                "max by (job, instance) (serving_feature_transforms_invalid) > 0",
                settings.alert_for_s,
                {"severity": "warning"},
                "v{{ $value }} declares feature transforms serving cannot apply",
                "The version's serving_feature_transforms tag cannot be read (see "
                "serving/transforms.py for what can), so serving keeps the transforms it had for "
                "it, or does not load it if it never had any. `mlops-lab logs serving` quotes the "
                "tag; correct or remove it on the version in MLflow, and serving follows at its "
                "next poll.",
            ),
            _alert(
                "PredictionLogRowsDeadLettered",
                f"increase(serving_prediction_log_dead_lettered_total[{window}]) > 0",
                0,
                {"severity": "warning"},
                "The prediction log refused {{ $value | humanize }} rows",
                "The database refused rows for what they hold (not because it was down), so "
                "serving appended them to logs/prediction-log-dead-letter.jsonl in the data dir. "
                "The predictions were answered; drift and retraining do not see these rows until "
                "they are replayed.",
            ),
            _alert(
                "TargetSeriesGrowing",
                f"delta(scrape_samples_scraped[{window}]) > {settings.alert_series_growth}",
                settings.alert_for_s,
                {"severity": "warning"},
                "{{ $labels.job }} exports {{ $value | humanize }} more series than "
                f"{window} ago",
                "Each series a target exports is held in Prometheus's memory and read at every "
                "scrape; a count that keeps growing usually means a label that takes a new "
                "value all the time. Prometheus's TSDB status page (/tsdb-status) lists the "
                "labels with the most values; the target's own /metrics shows the series.",
            ),
            _alert(
                "TargetDown",
                "up == 0",
                settings.alert_for_s,
                page,
                "{{ $labels.job }} at {{ $labels.instance }} is down",
                "Prometheus cannot scrape it. `mlops-lab status` shows which process is not "
                "running; `mlops-lab logs {{ $labels.job }}` shows why.",
            ),
        ],
    }


# Recorded series of a rollout (names follow Prometheus's level:metric:operations convention for
# recording rules). The window is the serving alerts' (``alert_rate_window_s``).
VERSION_ERROR_RATIO = "model_version_role:serving_version_requests:error_ratio"
VERSION_LATENCY_P99 = "model_version:serving_prediction_latency_seconds:p99"
VERSION_SCORING_P99 = "model_version:serving_model_scoring_seconds:p99"
CANDIDATE_ERROR_RATIO_TO_CHAMPION = "rollout:candidate_error_ratio:ratio_to_champion"
CANDIDATE_LATENCY_P99_TO_CHAMPION = "rollout:candidate_latency_p99:ratio_to_champion"
_CANDIDATE_ROLES = 'role=~"canary|shadow"'
_CHAMPION_ROLE = 'role="champion"'


def version_error_ratio(window: str = RATE_WINDOW) -> str:
    """Share of each version's requests it failed to score, by role, over ``window``.

    Only versions with traffic in the window get a ratio (``> 0`` drops the others): a candidate
    of a rollout that ended long ago keeps its counter series, and 0/0 would be NaN beside the
    live one.
    """
    by = "sum by (job, model_version, role)"
    requests = "serving_version_requests_total"
    return (
        f'(\n  {by} (rate({requests}{{outcome="error"}}[{window}]))\n'
        f"  or {by} (rate({requests}[{window}])) * 0\n)\n"
        f"  / ({by} (rate({requests}[{window}])) > 0)"
    )


def _record(name: str, expr: str) -> dict:
    return {"record": name, "expr": expr}


def _as_model_version(series: str) -> str:
    """``series`` (a gauge labelled ``version``) relabelled for a join on ``model_version``."""
    return f'label_replace({series}, "model_version", "$1", "version", "(.*)")'


def rollout_rules(settings: Settings) -> dict:
    """Per-version evidence for a rollout, recorded from serving's metrics, and the alerts on it.

    The candidate is compared with the champion served beside it in the same job: its error
    ratio and p99 latency as a ratio of the champion's (above 1: worse). Shadow agreement comes
    from the drift monitor's rollout analysis (``rollout_shadow_agreement_ratio``).
    """
    window = rate_window(settings)
    candidate = f"{VERSION_ERROR_RATIO}{{{_CANDIDATE_ROLES}}}"
    champion = f"{VERSION_ERROR_RATIO}{{{_CHAMPION_ROLE}}}"
    latency_of = "max by (job) (\n  {p99}\n  and on (job, model_version) {info}\n)"
    candidate_p99 = latency_of.format(
        p99=VERSION_LATENCY_P99, info=_as_model_version("serving_rollout_info")
    )
    champion_p99 = latency_of.format(
        p99=VERSION_LATENCY_P99, info=_as_model_version("serving_model_info")
    )
    factor = settings.alert_rollout_error_factor
    floor = settings.alert_rollout_error_floor
    errors = (
        f"{candidate}\n  > on (job) group_left ()\n"
        f"  ({factor:g} * max by (job) ({champion}))\n"
        f"and\n{candidate} > {floor:g}"
    )
    agreement = f"rollout_shadow_agreement_ratio < {settings.alert_shadow_agreement_min:g}"
    return {
        "name": "mlops-lab-rollout",
        "rules": [
            _record(VERSION_ERROR_RATIO, version_error_ratio(window)),
            _record(VERSION_LATENCY_P99, serving_latency_by_version(0.99, window)),
            _record(VERSION_SCORING_P99, serving_latency_by_version(0.99, window, scoring=True)),
            _record(
                CANDIDATE_ERROR_RATIO_TO_CHAMPION,
                f"max by (job) ({candidate})\n  / max by (job) ({champion})",
            ),
            _record(CANDIDATE_LATENCY_P99_TO_CHAMPION, f"{candidate_p99}\n/\n{champion_p99}"),
            _alert(
                "RolloutCandidateErrorRateHigh",
                errors,
                settings.alert_for_s,
                {"severity": "warning"},
                "Rollout candidate v{{ $labels.model_version }} fails "
                "{{ $value | humanizePercentage }} of its {{ $labels.role }} requests",
                f"Over {window} the candidate failed more than {factor:g} times the champion's "
                f"share of requests (and more than {floor:.0%}). In a canary its share of users "
                "gets 500s: `mlops-lab rollout abort`; `mlops-lab logs serving` says why.",
            ),
            _alert(
                "RolloutShadowDisagreement",
                agreement,
                settings.alert_for_s,
                {"severity": "warning"},
                "The shadow candidate agrees with the champion on "
                "{{ $value | humanizePercentage }} of records",
                f"Below {settings.alert_shadow_agreement_min:.0%} of the records both scored get "
                "the same class from both versions. A better model may disagree where the "
                "champion was wrong: compare live AUCs (`mlops-lab rollout status`, the Rollout "
                "dashboard) before promoting it.",
            ),
        ],
    }


def rules_document(settings: Settings) -> dict:
    return {"groups": [model_rules(settings), platform_rules(settings), rollout_rules(settings)]}


def rules_dir(settings: Settings) -> Path:
    return settings.paths.run / "rules"
