"""/metrics carries the names dashboards and alert rules are written against."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipelines import data
from serving.schema import records_from_frame
from tests.models import TYPES
from tests.serving.conftest import Platform, metric

CONTRACT = [
    "serving_model_version",
    "serving_model_info",
    "serving_predictions",
    "serving_prediction_probability",
    "serving_validation_failures",
    "serving_requests_shed",
    "serving_registry_reachable",
    "serving_model_swaps",
    "serving_model_refused",
    "serving_feature_transforms_invalid",
    "serving_champion_load_failed",
    "serving_prediction_log_queue_depth",
    "serving_prediction_log_written",
    "serving_prediction_log_dropped",
    "serving_prediction_log_dead_lettered",
    "bentoml_service_request",
    "bentoml_service_request_duration_seconds",
    "serving_prediction_latency_seconds",
    "serving_model_scoring_seconds",
    "serving_caller_requests",
]


def _families(url: str) -> dict:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return {family.name: family for family in text_string_to_metric_families(text)}


@pytest.fixture(scope="module")
def families(platform: Platform) -> dict:
    records = records_from_frame(data.generate(5, seed=51), TYPES.names)
    predict = f"{platform.url}/predict"
    assert httpx.post(predict, json={"records": records}, timeout=30).status_code == 200
    # A rejection, so the labelled counter has a sample to show.
    httpx.post(predict, json={"records": []}, timeout=30)
    return _families(platform.url)


@pytest.mark.parametrize("name", CONTRACT)
def test_metric_is_exposed(families, name) -> None:
    assert name in families


def test_model_info_names_the_served_version_and_run(platform: Platform, families) -> None:
    (sample,) = families["serving_model_info"].samples
    assert sample.value == 1
    assert sample.labels["version"] == platform.v1
    assert sample.labels["model_name"] == platform.settings.model_name
    assert sample.labels["run_id"]


def test_model_version_gauge_is_the_served_version(platform: Platform) -> None:
    assert metric(platform.url, "serving_model_version") == float(platform.v1)


def test_predictions_are_counted_by_class(platform: Platform, http) -> None:
    records = records_from_frame(data.generate(20, seed=52), TYPES.names)
    before = _by_class(platform.url)
    predicted = http.post("/predict", json={"records": records}).json()["predictions"]
    after = _by_class(platform.url)
    for cls in ("0", "1"):
        assert after.get(cls, 0) - before.get(cls, 0) == predicted.count(int(cls))


def _by_class(url: str) -> dict[str, float]:
    family = _families(url).get("serving_predictions")
    if family is None:
        return {}
    return {
        s.labels["predicted_class"]: s.value for s in family.samples if s.name.endswith("_total")
    }


@pytest.mark.parametrize(
    "name", ["serving_prediction_latency_seconds", "serving_model_scoring_seconds"]
)
def test_latency_is_measured_by_the_version_that_answered(
    platform: Platform, families, name: str
) -> None:
    samples = families[name].samples
    counts = {s.labels["model_version"]: s.value for s in samples if s.name == f"{name}_count"}
    assert counts.get(platform.v1, 0) >= 1, counts
    edges = {float(s.labels["le"]) for s in samples if s.name == f"{name}_bucket"}
    # The SLO is a bucket edge, so the p99 the alert compares is not interpolated across it.
    assert platform.settings.alert_latency_p99_s in edges


def test_the_latency_of_a_request_includes_its_model_call(platform: Platform, http) -> None:
    """Per version, a request's latency is at least its model call: their difference is the
    time spent in the server, which is what tells a slow server from a slow model."""
    records = records_from_frame(data.generate(5, seed=53), TYPES.names)
    assert http.post("/predict", json={"records": records}).status_code == 200
    families = _families(platform.url)

    def total(name: str) -> float:
        return sum(
            s.value
            for s in families[name].samples
            if s.name == f"{name}_sum" and s.labels["model_version"] == platform.v1
        )

    assert total("serving_prediction_latency_seconds") >= total("serving_model_scoring_seconds")


def test_a_loaded_version_is_exported_at_zero_before_its_first_request() -> None:
    """A series that first appears with its count already up has no increase for rate(): a
    canary's first burst between two scrapes left its p99 empty (the live rollout story timed
    out on it one run in four)."""
    from prometheus_client import CollectorRegistry, generate_latest

    from serving.metrics import ServingMetrics

    registry = CollectorRegistry()
    metrics = ServingMetrics(registry)
    metrics.start_at_zero("7", "canary")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
    }

    assert samples[("serving_prediction_latency_seconds_count", (("model_version", "7"),))] == 0
    assert samples[("serving_model_scoring_seconds_count", (("model_version", "7"),))] == 0
    for outcome in ("ok", "error"):
        key = (("model_version", "7"), ("outcome", outcome), ("role", "canary"))
        assert samples[("serving_version_requests_total", key)] == 0


def test_callers_serving_does_not_know_share_one_series(platform: Platform) -> None:
    records = records_from_frame(data.generate(1, seed=52), TYPES.names)
    for n in range(20):
        sent = {"X-Caller": f"loan-front-end/{n:032x}"}
        answer = httpx.post(
            f"{platform.url}/predict", json={"records": records}, headers=sent, timeout=30
        )
        assert answer.status_code == 200

    samples = _families(platform.url)["serving_caller_requests"].samples
    callers = {s.labels["caller"] for s in samples if s.name.endswith("_total")}
    assert "other" in callers
    assert not [c for c in callers if c.startswith("loan-front-end/")], callers
