"""The Grafana dashboards as Grafana will load them (the live query check is in the e2e test)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from monitoring import rules
from monitoring.assets import DASHBOARDS_DIR, default_settings
from monitoring.dashboards import all_dashboards

DASHBOARDS = {path.stem: json.loads(path.read_text()) for path in DASHBOARDS_DIR.glob("*.json")}
PROVISIONED_DATASOURCE_UID = "prometheus"

# Metric names a query may use: what this project's services export (monitoring/README.md and the
# serving contract), BentoML's built-ins, and Prometheus' own series.
KNOWN_METRICS = {
    *re.findall(
        r"^\| `([a-z0-9_:]+)`",
        (Path(__file__).resolve().parents[2] / "monitoring" / "README.md").read_text(),
        flags=re.MULTILINE,
    ),
    "serving_model_version",
    "serving_model_info",
    "serving_predictions_total",
    "serving_validation_failures_total",
    "serving_registry_reachable",
    "serving_model_swaps_total",
    "serving_prediction_log_queue_depth",
    "serving_prediction_log_written_total",
    "serving_prediction_log_dropped_total",
    "serving_input_out_of_range_total",
    "serving_candidate_version",
    "serving_canary_percent",
    "serving_caller_requests_total",
    "bentoml_service_request_total",
    "bentoml_service_request_duration_seconds_bucket",
    "serving_prediction_latency_seconds_bucket",
    "serving_model_scoring_seconds_bucket",
    "drift_check_duration_seconds_sum",
    "drift_check_duration_seconds_count",
    "ALERTS",
    "up",
    "scrape_samples_scraped",
}
_KEYWORDS = {"and", "or", "unless", "by", "on", "without", "ignoring", "group_left", "group_right"}


def metric_names(expr: str) -> set[str]:
    """Series names in a PromQL expression (not functions, labels, keywords or durations)."""
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(?:by|on|without|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    # Recorded series have colons in their names (level:metric:operations).
    names = set(re.findall(r"(?<![\w:])([A-Za-z_:][A-Za-z0-9_:]*)(?![\w:])(?!\s*\()", expr))
    return {name for name in names if name not in _KEYWORDS}


def test_there_are_serving_drift_model_and_rollout_dashboards() -> None:
    assert set(DASHBOARDS) == {"serving", "drift", "model", "rollout"}
    assert set(all_dashboards(default_settings())) == set(DASHBOARDS)


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_has_a_stable_uid_and_unique_panel_ids(name: str) -> None:
    dashboard = DASHBOARDS[name]
    assert dashboard["uid"] == f"mlops-lab-{name}"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_panel_queries_the_provisioned_prometheus(name: str) -> None:
    for panel in DASHBOARDS[name]["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == PROVISIONED_DATASOURCE_UID, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == PROVISIONED_DATASOURCE_UID


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_query_uses_known_metric_names(name: str) -> None:
    for title, expr in all_dashboards(default_settings())[name].queries():
        unknown = metric_names(expr) - KNOWN_METRICS
        assert not unknown, f"{name} / {title}: unknown metrics {unknown} in {expr}"


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_panels_do_not_overlap(name: str) -> None:
    taken: set[tuple[int, int]] = set()
    for panel in DASHBOARDS[name]["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def test_thresholds_come_from_the_settings() -> None:
    settings = default_settings()
    panels = {
        panel["title"]: panel
        for dashboard in DASHBOARDS.values()
        for panel in dashboard["panels"]
        if panel["type"] != "row"
    }

    def red_line(title: str) -> float:
        steps = panels[title]["fieldConfig"]["defaults"]["thresholds"]["steps"]
        return steps[-1]["value"]

    assert red_line("Latency of /predict") == settings.alert_latency_p99_s
    assert red_line("Server error ratio (5xx)") == settings.alert_error_ratio
    assert red_line("Live ROC AUC and accuracy") == settings.gate_min_auc
    assert red_line("Share of features drifted") == settings.drift_share_threshold
    assert red_line("Candidate error ratio / champion's") == settings.alert_rollout_error_factor
    assert red_line("Agreement with the champion") == settings.alert_shadow_agreement_min


def _panel_queries(dashboard: str, title: str) -> dict[str, str]:
    """Legend -> PromQL of one panel, as committed."""
    panel = next(p for p in DASHBOARDS[dashboard]["panels"] if p["title"] == title)
    return {target["legendFormat"]: target["expr"] for target in panel["targets"]}


def _alert_expression(name: str, threshold: float) -> str:
    """The alert's expression before its threshold comparison."""
    document = rules.rules_document(default_settings())
    expr = next(r["expr"] for g in document["groups"] for r in g["rules"] if r.get("alert") == name)
    measured, _, compared_with = expr.rpartition(" > ")
    assert float(compared_with) == threshold
    return measured.strip()


def test_the_error_ratio_panel_plots_what_the_error_alert_compares() -> None:
    settings = default_settings()
    panel = _panel_queries("serving", "Server error ratio (5xx)")
    alert = _alert_expression("ServingErrorRateHigh", settings.alert_error_ratio)
    assert list(panel.values()) == [alert]


def test_the_p99_latency_line_is_what_the_latency_alert_compares() -> None:
    settings = default_settings()
    panel = _panel_queries("serving", "Latency of /predict")
    alert = _alert_expression("ServingLatencySLOBreached", settings.alert_latency_p99_s)
    assert panel["p99"] == alert


def test_latency_by_version_has_the_slo_line_and_one_line_per_version() -> None:
    settings = default_settings()
    for title in ("p99 latency by model version", "p99 time in the model by version"):
        (legend, expr) = next(iter(_panel_queries("serving", title).items()))
        assert legend == "v{{model_version}}"
        assert "by (job, model_version, le)" in expr
        assert f"[{rules.rate_window(settings)}]" in expr


def test_rollout_panels_plot_the_recorded_series_the_rollout_alerts_compare() -> None:
    document = rules.rollout_rules(default_settings())
    recorded = {rule["record"] for rule in document["rules"] if "record" in rule}
    plotted = {
        expr
        for title, expr in all_dashboards(default_settings())["rollout"].queries()
        if title in {"Error ratio by version", "Candidate error ratio / champion's"}
    }
    assert plotted == {rules.VERSION_ERROR_RATIO, rules.CANDIDATE_ERROR_RATIO_TO_CHAMPION}
    assert plotted <= recorded
    alerts = {rule["alert"]: rule["expr"] for rule in document["rules"] if "alert" in rule}
    assert rules.VERSION_ERROR_RATIO in alerts["RolloutCandidateErrorRateHigh"]
    assert "rollout_shadow_agreement_ratio" in alerts["RolloutShadowDisagreement"]
