"""Live analysis of a rollout against real processes: MLflow, serving, the drift monitor and a
Prometheus that scrapes them and evaluates the rollout rules.

One story, told once for the module: version 1 is the champion; version 3 (trained exactly as 1)
is tried in shadow, then version 2 (other data, another seed) in shadow, then as a 50% canary.
Outcomes come back through /feedback after each phase. Each test reads one part of it.
"""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from monitoring.assets import default_settings
from monitoring.dashboards import all_dashboards
from pipelines import data
from pipelines import rollout as rollouts
from platform_core import contract, prediction_log, promql
from platform_core.rollout import Plan, Rollout
from platform_core.rollout_analysis import Analysis, analyse
from platform_core.settings import Settings
from serving.schema import records_from_frame
from tests.models import TYPES, register_model, set_champion
from tests.serving.conftest import metric
from tests.support import run_cli, running_platform, wait_for

# The story starts its own platform (MLflow, serving, the drift monitor, Prometheus).
pytestmark = pytest.mark.platform

SHADOW_RECORDS = 300
CANARY_REQUESTS = 300
# Dashboard panels that may be empty at every moment of this story, and why.
MAY_BE_EMPTY = {
    "Candidate error ratio / champion's": "0 / 0 (NaN) while neither version fails a request",
}


@dataclass
class Story:
    settings: Settings
    v1: str
    v2: str
    v3: str
    same_model: Analysis | None = None
    other_model_unlabelled: Analysis | None = None
    other_model: Analysis | None = None
    canary: Analysis | None = None
    # What Prometheus had of the drift monitor's export during the second shadow.
    exported: dict[str, float | None] = field(default_factory=dict)
    # Rollout dashboard: panel / expression -> whether it had a finite value in some phase.
    panels: dict[str, bool] = field(default_factory=dict)
    serving_url: str = ""
    # `mlops-lab rollout status --json` during the second shadow, once labelled.
    status: subprocess.CompletedProcess[str] | None = None
    status_text: subprocess.CompletedProcess[str] | None = None
    # `rollout status --by home_ownership` during the canary (--json, then as printed).
    by_segment: subprocess.CompletedProcess[str] | None = None
    by_segment_text: subprocess.CompletedProcess[str] | None = None
    # The same once the canary was aborted: the last rollout, over its own time.
    by_segment_ended: subprocess.CompletedProcess[str] | None = None

    def analysis(self, prometheus: bool = False) -> Analysis:
        engine = prediction_log.connect(self.settings.prediction_log_db_url)
        try:
            found = analyse(
                self.settings, contract.client_for(self.settings), engine, prometheus=prometheus
            )
        finally:
            engine.dispose()
        assert found is not None, "a rollout is in progress"
        return found

    def value(self, expr: str) -> float | None:
        series = promql.query(self.settings, expr)
        finite = [s["value"] for s in series if math.isfinite(s["value"])]
        return finite[0] if finite else None

    def start(self, version: str, plan: Plan) -> Rollout:
        client = contract.client_for(self.settings)
        started = rollouts.start(client, self.settings, version, plan, by="tests")
        wait_for(
            lambda: metric(self.serving_url, "serving_candidate_version") == float(version),
            60,
            what=f"serving to load candidate v{version}",
            log=self.settings.paths.log_file("serving"),
        )
        return started

    def end(self) -> None:
        rollouts.abort(contract.client_for(self.settings), self.settings, "tests", "next phase")
        wait_for(
            lambda: metric(self.serving_url, "serving_candidate_version") == 0,
            60,
            what="serving to drop the candidate",
        )

    def send(self, frame, keyed: bool = False) -> list[tuple[str, int]]:
        """Each row as one request; (request id, true label) of each."""
        records = records_from_frame(frame, TYPES.names)
        sent = []
        with httpx.Client(base_url=self.serving_url, timeout=30) as http:
            for index, (record, label) in enumerate(zip(records, frame[data.TARGET], strict=True)):
                body: dict = {"records": [record]}
                if keyed:
                    body["applicant_key"] = f"applicant-{index}"
                response = http.post("/predict", json=body)
                assert response.status_code == 200, response.text
                sent.append((response.json()["request_id"], int(label)))
        return sent

    def feedback(self, sent: list[tuple[str, int]]) -> None:
        labels = [{"request_id": rid, "label": label} for rid, label in sent]
        response = httpx.post(f"{self.serving_url}/feedback", json={"labels": labels}, timeout=60)
        assert response.json()["stored"] == len(sent), response.text

    def evaluate_dashboard(self) -> None:
        for title, expr in all_dashboards(default_settings())["rollout"].queries():
            query = expr.replace("$__rate_interval", "10s")
            key = f"{title} / {expr}"
            has_data = any(math.isfinite(s["value"]) for s in promql.query(self.settings, query))
            self.panels[key] = self.panels.get(key, False) or has_data


def _shadow_pairs_logged(story: Story, sent: list[tuple[str, int]], version: str) -> bool:
    figures = story.analysis().candidate
    return figures.version == version and figures.scored >= len(sent)


@pytest.fixture(scope="module")
def story() -> Iterator[Story]:
    with running_platform(
        ["mlflow", "serving", "drift-monitor", "prometheus"],
        alias_poll_interval_s=1.0,
        drift_interval_s=2.0,
        analysis_min_records=30,
        prediction_log_flush_interval_s=0.2,
    ) as settings:
        v1 = register_model(settings, seed=1).version
        v2 = register_model(settings, seed=2, rows=1_200).version
        v3 = register_model(settings, seed=1).version
        set_champion(settings, v1)
        story = Story(settings, v1, v2, v3, serving_url=settings.url(settings.serving_port))
        wait_for(
            lambda: metric(story.serving_url, "serving_model_version") == 1.0,
            120,
            what="serving to load v1",
            log=settings.paths.log_file("serving"),
        )
        _tell(story)
        yield story


def _tell(story: Story) -> None:
    settings = story.settings
    # 1. The same model in shadow.
    story.start(story.v3, Plan("shadow"))
    sent = story.send(data.generate(60, "baseline", seed=61))
    wait_for(lambda: _shadow_pairs_logged(story, sent, story.v3), 30, what="v3's shadow rows")
    story.feedback(sent)
    story.same_model = story.analysis()
    story.end()

    # 2. Another model in shadow: before and after the outcomes, and as the monitor exports it.
    story.start(story.v2, Plan("shadow"))
    sent = story.send(data.generate(SHADOW_RECORDS, "baseline", seed=62))
    wait_for(lambda: _shadow_pairs_logged(story, sent, story.v2), 30, what="v2's shadow rows")
    story.other_model_unlabelled = story.analysis()
    story.feedback(sent)
    story.other_model = story.analysis()
    story.status = run_cli(settings, "rollout", "status", "--json", timeout=120)
    story.status_text = run_cli(settings, "rollout", "status", timeout=120)
    labelled = f'rollout_labelled_records{{model_version="{story.v2}", role="shadow"}}'
    wait_for(
        lambda: (story.value(labelled) or 0) >= SHADOW_RECORDS,
        60,
        what="Prometheus to scrape the monitor's analysis of the labelled shadow",
        log=settings.paths.log_file("drift-monitor"),
    )
    for name in (
        "rollout_in_progress",
        "rollout_shadow_agreement_ratio",
        "rollout_shadow_score_distance_ratio",
        f'rollout_roc_auc_ratio{{model_version="{story.v2}", role="shadow"}}',
        f'rollout_roc_auc_ratio{{model_version="{story.v1}", role="champion"}}',
        "rollout_roc_auc_difference_stderr_ratio",
    ):
        story.exported[name] = story.value(name)
    wait_for(
        lambda: story.value("model_version:serving_model_scoring_seconds:p99") is not None,
        60,
        what="the scoring p99 to be recorded",
    )
    story.evaluate_dashboard()
    story.end()

    # 3. The other model as a 50% canary. Serving exports a loaded candidate's series at zero:
    # once Prometheus has them, its first burst of answers is an increase rate() sees.
    story.start(story.v2, Plan.canary(50))
    latency = f'serving_prediction_latency_seconds_count{{model_version="{story.v2}"}}'
    wait_for(
        lambda: promql.query(settings, latency),
        60,
        what="Prometheus to scrape the canary's latency series before its first request",
    )
    sent = story.send(data.generate(CANARY_REQUESTS, "baseline", seed=63), keyed=True)
    story.feedback(sent)
    canary_requests = (
        f'sum(serving_version_requests_total{{model_version="{story.v2}", role="canary"}})'
    )
    for expr, what in (
        (canary_requests, "Prometheus to scrape the canary's requests"),
        ("rollout:candidate_latency_p99:ratio_to_champion", "the canary's p99 ratio recorded"),
        ('rollout_roc_auc_ratio{role="canary"}', "the monitor's canary AUC scraped"),
    ):
        try:
            wait_for(lambda expr=expr: story.value(expr), 120, what=what)
        except AssertionError as timed_out:
            raise AssertionError(f"{timed_out}\n{_what_prometheus_has(settings)}") from None
    story.canary = story.analysis(prometheus=True)
    by = ("rollout", "status", "--by", "home_ownership")
    story.by_segment = run_cli(settings, *by, "--json", timeout=120)
    story.by_segment_text = run_cli(settings, *by, timeout=120)
    story.evaluate_dashboard()
    story.end()
    story.by_segment_ended = run_cli(settings, *by, "--json", timeout=120)


# What the rollout's recording rules are made of: printed when one of them is not recorded.
INGREDIENTS = (
    "model_version:serving_prediction_latency_seconds:p99",
    "serving_rollout_info",
    "serving_model_info",
    'up{job="serving"}',
    'avg_over_time(up{job="serving"}[10m])',
    'max_over_time(scrape_duration_seconds{job="serving"}[10m])',
)


def _what_prometheus_has(settings: Settings) -> str:
    lines = []
    for expr in INGREDIENTS:
        try:
            found = promql.query(settings, expr)
        except Exception as error:  # a diagnosis: what it could not read is part of it
            found = f"{type(error).__name__}: {error}"
        lines.append(f"{expr} = {found}")
    return "What Prometheus has now:\n" + "\n".join(lines)


def test_a_shadow_of_the_same_model_agrees_on_every_record(story: Story) -> None:
    analysis = story.same_model
    assert analysis is not None
    assert (analysis.candidate.version, analysis.candidate.role) == (story.v3, "shadow")
    assert analysis.agreement == 1.0
    assert analysis.score_distance == pytest.approx(0.0, abs=1e-12)
    assert analysis.auc_difference == pytest.approx(0.0, abs=1e-12)
    # Paired on the same records: identical scores leave no uncertainty in the difference.
    assert analysis.auc_difference_stderr == pytest.approx(0.0, abs=1e-9)


def test_a_shadow_of_another_model_agrees_less_and_its_scores_are_distributed_otherwise(
    story: Story,
) -> None:
    analysis = story.other_model
    assert analysis is not None
    assert analysis.agreement is not None and analysis.agreement < 1.0
    assert analysis.score_distance is not None and analysis.score_distance > 0.0


def test_live_auc_per_version_waits_for_outcomes(story: Story) -> None:
    before = story.other_model_unlabelled
    assert before is not None
    assert (before.champion.labelled, before.candidate.labelled) == (0, 0)
    assert before.champion.auc is None and before.candidate.auc is None
    assert before.auc_difference is None


def test_live_auc_per_version_once_outcomes_arrive_through_feedback(story: Story) -> None:
    analysis = story.other_model
    assert analysis is not None
    assert analysis.candidate.scored == SHADOW_RECORDS
    assert analysis.candidate.labelled == SHADOW_RECORDS
    assert analysis.champion.labelled >= SHADOW_RECORDS
    for figures in (analysis.champion, analysis.candidate):
        assert figures.auc is not None and 0.5 < figures.auc <= 1.0, figures
        assert figures.auc_stderr is not None and 0 < figures.auc_stderr < 0.1, figures
    assert analysis.candidate.auc is not None and analysis.champion.auc is not None
    assert analysis.auc_difference == pytest.approx(analysis.candidate.auc - analysis.champion.auc)
    # Paired: the difference is known better than either AUC on its own.
    assert analysis.auc_difference_stderr is not None
    assert 0 < analysis.auc_difference_stderr < (analysis.candidate.auc_stderr or 0)


def test_the_monitor_exports_the_shadow_analysis_to_prometheus(story: Story) -> None:
    analysis = story.other_model
    assert analysis is not None
    exported = story.exported
    assert exported["rollout_in_progress"] == 1
    assert exported["rollout_shadow_agreement_ratio"] == pytest.approx(analysis.agreement)
    assert exported["rollout_shadow_score_distance_ratio"] == pytest.approx(analysis.score_distance)
    candidate_auc = f'rollout_roc_auc_ratio{{model_version="{story.v2}", role="shadow"}}'
    assert exported[candidate_auc] == pytest.approx(analysis.candidate.auc)
    champion_auc = f'rollout_roc_auc_ratio{{model_version="{story.v1}", role="champion"}}'
    assert exported[champion_auc] == pytest.approx(analysis.champion.auc)
    assert exported["rollout_roc_auc_difference_stderr_ratio"] == pytest.approx(
        analysis.auc_difference_stderr
    )


def test_a_canary_has_auc_errors_and_latency_per_version(story: Story) -> None:
    analysis = story.canary
    assert analysis is not None
    champion, candidate = analysis.champion, analysis.candidate
    assert (candidate.version, candidate.role) == (story.v2, "canary")
    # Each request went to one version: every one of them is counted once.
    assert champion.scored + candidate.scored == CANARY_REQUESTS
    assert champion.labelled + candidate.labelled == CANARY_REQUESTS
    assert champion.auc is not None and candidate.auc is not None
    assert analysis.auc_difference_stderr is not None
    assert analysis.auc_difference_stderr == pytest.approx(
        math.hypot(champion.auc_stderr or 0, candidate.auc_stderr or 0)
    )
    for figures in (champion, candidate):
        assert figures.requests is not None and figures.requests > 0, figures
        assert figures.error_rate == 0.0, figures
        assert figures.p99_s is not None and 0 < figures.p99_s < 10, figures


def test_no_rollout_means_no_analysis_and_the_monitor_says_none_is_in_progress(
    story: Story,
) -> None:
    engine = prediction_log.connect(story.settings.prediction_log_db_url)
    try:
        assert analyse(story.settings, contract.client_for(story.settings), engine) is None
    finally:
        engine.dispose()
    wait_for(
        lambda: story.value("rollout_in_progress") == 0,
        30,
        what="the monitor to export that no rollout is in progress",
    )
    assert story.value("rollout_shadow_agreement_ratio") is None


def test_every_rollout_dashboard_query_returned_data_during_the_story(story: Story) -> None:
    empty = [
        panel
        for panel, had_data in story.panels.items()
        if not had_data and not any(panel.startswith(f"{t} / ") for t in MAY_BE_EMPTY)
    ]
    assert story.panels, "the dashboard was evaluated"
    assert not empty, "queries without a finite value:\n" + "\n".join(empty)


def test_rollout_status_json_carries_the_analysis(story: Story) -> None:
    result, analysis = story.status, story.other_model
    assert result is not None and analysis is not None
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)["analysis"]
    assert shown["candidate"]["version"] == story.v2
    assert shown["candidate"]["labelled"] == SHADOW_RECORDS
    assert shown["agreement"] == pytest.approx(analysis.agreement)
    assert shown["auc_difference"] == pytest.approx(analysis.auc_difference)


def test_rollout_status_prints_the_analysis(story: Story) -> None:
    result, analysis = story.status_text, story.other_model
    assert result is not None and analysis is not None
    assert result.returncode == 0, result.stderr
    said = " ".join(result.stderr.split())
    assert f"live ROC AUC {analysis.champion.auc:.3f} ± {analysis.champion.auc_stderr:.3f}" in said
    assert f"same class on {analysis.agreement:.1%} of the records both scored" in said
    assert "(paired, same records)" in said


def test_rollout_status_splits_the_canary_by_a_feature(story: Story) -> None:
    result, canary = story.by_segment, story.canary
    assert result is not None and canary is not None
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)["segments"]
    assert (found["feature"], found["kind"]) == ("home_ownership", "categorical")
    assert (found["champion_version"], found["candidate_version"]) == (story.v1, story.v2)
    names = [s["name"] for s in found["segments"]]
    assert set(names) <= {"MORTGAGE", "OWN", "RENT"} and len(names) >= 2
    # Every canary answer is in one segment, with its outcome.
    candidate = [s["candidate"] for s in found["segments"]]
    assert sum(c["scored"] for c in candidate) == canary.candidate.scored
    assert sum(c["labelled"] for c in candidate) == canary.candidate.labelled
    assert set(found["worse"]) <= set(names)

    printed = story.by_segment_text
    assert printed is not None and printed.returncode == 0, printed
    said = " ".join(printed.stderr.split())
    assert "By home_ownership" in said and "RENT" in said
    assert "(independent records" in said


def test_after_an_abort_the_split_covers_the_last_rollout(story: Story) -> None:
    during, after = story.by_segment, story.by_segment_ended
    assert during is not None and after is not None
    assert after.returncode == 0, after.stderr
    document = json.loads(after.stdout)
    assert document["rollout"] is None and document["last_ended"]["outcome"] == "aborted"
    found = document["segments"]
    assert found["ended"].startswith("aborted at ")
    assert found["candidate_version"] == story.v2
    # The same canary answers as while it ran (the log keeps them).
    before = json.loads(during.stdout)["segments"]["segments"]
    assert [s["candidate"] for s in found["segments"]] == [s["candidate"] for s in before]
