"""The serving metrics that dashboards and alert rules use, next to BentoML's built-in ones.

Two kinds, exposed two ways:

- Events (counters, one histogram) are ordinary prometheus_client metrics. ``bentoml serve``
  starts its workers with ``PROMETHEUS_MULTIPROC_DIR`` set, so their values go to that directory
  and BentoML's ``/metrics`` already includes them, summed over workers.
- State (the served version, a refused one or its refused transforms, registry reachability,
  queue depth) is read from the live objects at scrape time by :class:`StateCollector`, and the
  service appends its output to ``/metrics``. A multiprocess gauge would remember every label set
  it ever had, so after a hot swap the old ``serving_model_info{version=...}`` series would still
  be exported; reading state has no such leftovers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Protocol

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from platform_core.rollout import Plan

PROBABILITY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
# Seconds. The SLO is added as a boundary (see latency_buckets): a quantile is interpolated
# within a bucket, so the alert's threshold should be an edge, not the middle of one.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)


def latency_buckets(slo_s: float | None = None) -> tuple[float, ...]:
    return tuple(sorted({*LATENCY_BUCKETS, *((slo_s,) if slo_s else ())}))


class ServingMetrics:
    """Event metrics. ``registry=None`` in a BentoML worker: the multiprocess files are exported."""

    def __init__(self, registry: CollectorRegistry | None, slo_s: float | None = None) -> None:
        # Latency by model version answers "did the new model make us slow?" at a glance; the
        # label takes one value per version served since the process started.
        self.latency = Histogram(
            "serving_prediction_latency_seconds",
            "Time /predict spends on an answered request (validation, waiting for a batch, "
            "scoring), by the model version that answered.",
            ["model_version"],
            buckets=latency_buckets(slo_s),
            registry=registry,
        )
        # The model's share of that time: slow scoring is the model, slow requests with quick
        # scoring are the server (queueing, batching, the event loop).
        self.scoring = Histogram(
            "serving_model_scoring_seconds",
            "Time of one model call scoring a batch of requests, by model version.",
            ["model_version"],
            buckets=latency_buckets(slo_s),
            registry=registry,
        )
        self.predictions = Counter(
            "serving_predictions",
            "Records answered, by predicted class.",
            ["predicted_class"],
            registry=registry,
        )
        self.probability = Histogram(
            "serving_prediction_probability",
            "Predicted probability of the positive class, per answered record.",
            buckets=PROBABILITY_BUCKETS,
            registry=registry,
        )
        self.validation_failures = Counter(
            "serving_validation_failures",
            "Rejected requests, by offending field and reason (one count per field and reason).",
            ["field", "reason"],
            registry=registry,
        )
        self.out_of_range = Counter(
            "serving_input_out_of_range",
            "Numeric values outside the served version's training range (scored anyway), "
            "by feature.",
            ["feature"],
            registry=registry,
        )
        self.shed = Counter(
            "serving_requests_shed",
            "Requests answered 503 because too many records were waiting to be scored.",
            registry=registry,
        )
        self.swaps = Counter(
            "serving_model_swaps",
            "Times the served model changed (the first load counts).",
            registry=registry,
        )
        self.log_written = Counter(
            "serving_prediction_log_written",
            "Rows written to the prediction log.",
            registry=registry,
        )
        self.log_dropped = Counter(
            "serving_prediction_log_dropped",
            "Rows dropped because the prediction-log queue was full.",
            registry=registry,
        )
        self.shadow_scored = Counter(
            "serving_shadow_scored",
            "Records a rollout candidate scored in shadow, after the champion answered them.",
            registry=registry,
        )
        self.shadow_dropped = Counter(
            "serving_shadow_dropped",
            "Records answered by the champion that the shadow candidate did not score because "
            "its queue was full (or serving was stopping).",
            registry=registry,
        )
        self.shadow_failed = Counter(
            "serving_shadow_failed",
            "Records the shadow candidate could not score, by reason: 'invalid' (its input schema "
            "rejects what the champion accepted) or 'error' (scoring raised).",
            ["reason"],
            registry=registry,
        )
        # Errors by version: the rollout analysis compares a candidate's with the champion's.
        # BentoML's request counter has no version, and in shadow the candidate answers nobody.
        self.version_requests = Counter(
            "serving_version_requests",
            "Requests each model version scored ('ok') or failed to score ('error'), by role: "
            "'champion' or 'canary' for answers, 'shadow' for a shadow candidate's scorings.",
            ["model_version", "role", "outcome"],
            registry=registry,
        )
        self.rollout_aborts = Counter(
            "serving_rollout_aborts",
            "Rollouts this process ended because their candidate could not be loaded.",
            registry=registry,
        )
        # Bounded by serving.callers: known callers by name, any other as "other".
        self.caller_requests = Counter(
            "serving_caller_requests",
            "Requests to the API by calling application (its X-Caller header): the callers "
            "serving knows by name, any other as 'other', none as 'unknown'.",
            ["caller", "endpoint"],
            registry=registry,
        )
        self.log_dead_lettered = Counter(
            "serving_prediction_log_dead_lettered",
            "Rows the prediction log refused for what they hold (not because it was unavailable), "
            "appended to the dead-letter file instead.",
            registry=registry,
        )

    @classmethod
    def for_this_process(cls, slo_s: float | None = None) -> ServingMetrics:
        multiprocess = "PROMETHEUS_MULTIPROC_DIR" in os.environ
        return cls(registry=None if multiprocess else REGISTRY, slo_s=slo_s)

    def observe_scoring(self, version: str, seconds: float) -> None:
        self.scoring.labels(model_version=version).observe(seconds)

    def start_at_zero(self, version: str, role: str) -> None:
        """Export a newly loaded version's request and latency series at zero before its first
        request. A series that first appears with its count already up has no increase to
        rate() in Prometheus: a canary answering its first burst between two scrapes would show
        no latency at all, so its p99 (and the rollout rules on it) stayed empty."""
        self.latency.labels(model_version=version)
        self.scoring.labels(model_version=version)
        for outcome in ("ok", "error"):
            self.version_requests.labels(model_version=version, role=role, outcome=outcome)

    def count_request(self, version: str, role: str, ok: bool, requests: int = 1) -> None:
        outcome = "ok" if ok else "error"
        self.version_requests.labels(model_version=version, role=role, outcome=outcome).inc(
            requests
        )

    def observe(self, predictions: Sequence[int], probabilities: Sequence[float]) -> None:
        for predicted, probability in zip(predictions, probabilities, strict=True):
            self.predictions.labels(predicted_class=str(predicted)).inc()
            self.probability.observe(probability)


class ServedModel(Protocol):
    # Read-only, as the collector only reads them (and serving's LoadedModel is frozen).
    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def run_id(self) -> str: ...


class ServedRollout(Protocol):
    """A loaded candidate and how it is tried (serving's LiveRollout is one)."""

    @property
    def version(self) -> str: ...

    @property
    def plan(self) -> Plan: ...


class ServingState(Protocol):
    """What the collector reads; the service object provides it."""

    model_name: str

    @property
    def served(self) -> ServedModel | None: ...

    @property
    def rollout(self) -> ServedRollout | None: ...

    @property
    def shadow_queue_depth(self) -> int: ...

    @property
    def registry_reachable(self) -> bool | None: ...

    @property
    def refused_version(self) -> str | None: ...

    @property
    def transforms_invalid_version(self) -> str | None: ...

    @property
    def load_failed_version(self) -> str | None: ...

    @property
    def log_queue_depth(self) -> int: ...


def _version_gauge(name: str, documentation: str, version: str | None) -> GaugeMetricFamily:
    """A registry version as a number (0 for none): what an alert's summary can quote."""
    return GaugeMetricFamily(
        name, documentation, value=int(version) if version and version.isdigit() else 0
    )


class StateCollector:
    def __init__(self, state: ServingState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        served = self.state.served
        version = GaugeMetricFamily(
            "serving_model_version",
            "Registry version of the served model (0 while none is loaded).",
            labels=["model_name"],
        )
        number = int(served.version) if served and served.version.isdigit() else 0
        version.add_metric([self.state.model_name], number)
        yield version
        info = GaugeMetricFamily(
            "serving_model_info",
            "Always 1; the labels say which model version is served.",
            labels=["model_name", "version", "run_id"],
        )
        if served is not None:
            info.add_metric([served.name, served.version, served.run_id], 1)
        yield info
        yield _version_gauge(
            "serving_model_refused",
            "Registry version the champion alias points at that serving refused to load, because "
            "the platform does not trust what it holds (0 when none is).",
            self.state.refused_version,
        )
        yield _version_gauge(
            "serving_feature_transforms_invalid",
            "Registry version whose declared feature transforms (its serving_feature_transforms "
            "tag) serving cannot apply, so it keeps the ones it had or does not load the version "
            "(0 when none is).",
            self.state.transforms_invalid_version,
        )
        yield _version_gauge(
            "serving_champion_load_failed",
            "Registry version the champion alias points at that serving failed to load (its "
            "artifacts missing or unreadable), retried every poll while an older model serves "
            "(0 when none is).",
            self.state.load_failed_version,
        )
        yield from self._rollout()
        reachable = self.state.registry_reachable
        if reachable is not None:
            yield GaugeMetricFamily(
                "serving_registry_reachable",
                "1 if the last poll of the model registry succeeded, else 0.",
                value=int(reachable),
            )
        yield GaugeMetricFamily(
            "serving_prediction_log_queue_depth",
            "Prediction-log rows accepted but not yet written.",
            value=self.state.log_queue_depth,
        )

    def _rollout(self) -> Iterator[Metric]:
        live = self.state.rollout
        yield GaugeMetricFamily(
            "serving_candidate_version",
            "Registry version of the rollout candidate loaded beside the champion (0 while none "
            "is).",
            value=int(live.version) if live and live.version.isdigit() else 0,
        )
        info = GaugeMetricFamily(
            "serving_rollout_info",
            "Always 1 while a rollout candidate is loaded; the labels say which and how it is "
            "tried (mode 'shadow' or 'canary').",
            labels=["model_name", "version", "mode"],
        )
        if live is not None:
            info.add_metric([self.state.model_name, live.version, live.plan.mode], 1)
        yield info
        canary = live is not None and live.plan.mode == "canary"
        yield GaugeMetricFamily(
            "serving_canary_percent",
            "Share of requests the rollout candidate answers, in percent (0 unless a canary).",
            value=live.plan.percent if live is not None and canary else 0,
        )
        yield GaugeMetricFamily(
            "serving_shadow_queue_depth",
            "Answered records waiting for the shadow candidate to score them.",
            value=self.state.shadow_queue_depth,
        )


def render_state(state: ServingState) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(state))
    return generate_latest(registry).decode()
