"""Rollout: what a shadow candidate costs the callers, and how long an automatic decision takes.

Starts MLflow and serving on free ports (the alias polled every second), registers two versions
of the model trained on different seeds, makes the first champion, and loads serving from a
separate process (benchmarks/load.py) at fixed open-loop rates, with the champion alone and
with the second version in shadow in turn, three rounds: in shadow every request is scored
twice, the second time off the request path. The ratio of the median p99s is the shadow's
overhead on the caller (issue goal: at most 1.2x). The shadow rows the run could not score (the
bounded queue overflowed) are reported beside it: a shadow that keeps up scores them all.

Then the automatic decision, with test settings (a check every 5 s, 200 records and 100 outcomes
per version, an AUC difference down to -0.05 accepted): MLflow, serving, Prometheus, Prefect and
the flows service, a candidate in shadow, and traffic at about 40 requests per second whose
outcomes come back at once; timed from `rollout start` until the rollout-decision flow has made
the candidate champion.
"""

from __future__ import annotations

import os
import statistics
import time

import httpx

from benchmarks import results
from benchmarks.bench_serving import load
from benchmarks.results import Figure, Report
from pipelines import data
from platform_core import contract
from serving.schema import records_from_frame
from tests.models import TYPES, register_model, set_champion
from tests.serving.conftest import metric, wait_until_serving
from tests.support import run_cli, running_platform, wait_for

SECTION = "rollout"
RATES = (100, 200)
ROUNDS = 3
# What makes a decision possible in a bench's time, not what a platform should ship with.
DECISION_SETTINGS = {
    "alias_poll_interval_s": 1.0,
    "rollout_check_interval_s": 5.0,
    "rollout_min_scored": 200,
    "rollout_min_labelled": 100,
    "rollout_min_auc_difference": -0.05,
}


def _start_shadow(settings, version: str) -> None:
    result = run_cli(settings, "rollout", "start", version, "--shadow", timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"`mlops-lab rollout start {version} --shadow` failed:\n{result.stderr}")
    url = settings.url(settings.serving_port)
    wait_for(
        lambda: metric(url, "serving_candidate_version") == float(version),
        60,
        what=f"serving to load v{version} as the shadow candidate",
        log=settings.paths.log_file("serving"),
    )


def _abort(settings, version: str) -> None:
    result = run_cli(settings, "rollout", "abort", "--reason", "bench: next run alone", timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"`mlops-lab rollout abort` failed:\n{result.stderr}")
    url = settings.url(settings.serving_port)
    wait_for(
        lambda: not metric(url, "serving_candidate_version"),
        60,
        what=f"serving to drop v{version}",
        log=settings.paths.log_file("serving"),
    )


def measure(report: Report, quick: bool = False) -> None:
    seconds = 5.0 if quick else 15.0
    rounds = 1 if quick else ROUNDS
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    alone: dict[int, list[dict]] = {rate: [] for rate in RATES}
    shadowed: dict[int, list[dict]] = {rate: [] for rate in RATES}
    dropped = 0.0
    with running_platform(["mlflow", "serving"], alias_poll_interval_s=1.0) as settings:
        champion = register_model(settings, seed=42, rows=5_000, label="bench").version
        candidate = register_model(settings, seed=7, rows=5_000, label="bench").version
        set_champion(settings, champion)
        wait_until_serving(settings, champion, timeout_s=120)
        url = settings.url(settings.serving_port)
        load(url, "ours", 5.0, rate=RATES[0])  # warm-up: connections, caches, batch sizing
        # Alone and with a shadow in turn, several rounds: a p99 of a few thousand requests moves
        # by a millisecond from one run to the next on a busy laptop, as much as the shadow costs.
        for turn in range(rounds):
            if turn:
                _abort(settings, candidate)
            for rate in RATES:
                alone[rate].append(load(url, "ours", seconds, rate=rate))
            _start_shadow(settings, candidate)
            load(url, "ours", 5.0, rate=RATES[0])
            dropped_before = metric(url, "serving_shadow_dropped_total") or 0.0
            for rate in RATES:
                shadowed[rate].append(load(url, "ours", seconds, rate=rate))
            dropped += (metric(url, "serving_shadow_dropped_total") or 0.0) - dropped_before
    decision_s = until_automatic_promote()
    for rate in RATES:
        runs = shadowed[rate] + alone[rate]
        failed = sum(run["failed"] for run in runs)
        note = f"median of {rounds} runs each, in turn" if rounds > 1 else ""
        report.add(
            Figure(
                SECTION,
                f"p99 at {rate} req/s with a shadow candidate",
                statistics.median(run["p99_ms"] for run in shadowed[rate]),
                "ms",
                "the champion alone",
                statistics.median(run["p99_ms"] for run in alone[rate]),
                goal="<= 1.2x",
                note="; ".join(filter(None, [note, f"failed: {failed}" if failed else ""])) or None,
            )
        )
    report.add(
        Figure(
            SECTION,
            "shadow scores dropped (queue full)",
            dropped,
            "records",
            note=f"of about {sum(RATES) * seconds * rounds:.0f} requests",
        )
    )
    report.add(
        Figure(
            SECTION,
            "rollout start -> automatic promote (test settings)",
            decision_s,
            "s",
            note="checks every 5 s; 200 records, 100 outcomes per version",
        )
    )


def until_automatic_promote(timeout_s: float = 600.0) -> float:
    """Seconds from `rollout start V --shadow` until the rollout-decision flow promoted V, while
    labelled traffic flows."""
    frame = data.generate(5_000, seed=11)
    records = records_from_frame(frame, TYPES.names)
    labels = frame[data.TARGET].astype(int).tolist()
    services = ["mlflow", "serving", "prometheus", "prefect", "flows"]
    with running_platform(services, **DECISION_SETTINGS) as settings:
        champion = register_model(settings, seed=42, rows=5_000, label="bench").version
        candidate = register_model(settings, seed=7, rows=5_000, label="bench").version
        set_champion(settings, champion)
        wait_until_serving(settings, champion, timeout_s=120)
        client = contract.client_for(settings)
        _start_shadow(settings, candidate)
        started = time.perf_counter()
        with httpx.Client(base_url=settings.url(settings.serving_port), timeout=10) as http:
            index = 0
            while time.perf_counter() - started < timeout_s:
                for _ in range(20):
                    i = index % len(records)
                    answer = http.post("/predict", json={"records": [records[i]]}).json()
                    label = {"request_id": answer["request_id"], "label": labels[i]}
                    http.post("/feedback", json={"labels": [label]})
                    index += 1
                now = contract.champion(client, settings)
                if now is not None and str(now.version) == candidate:
                    return time.perf_counter() - started
                time.sleep(0.5)
    raise TimeoutError(f"no automatic promote within {timeout_s:.0f} s")


if __name__ == "__main__":
    results.main(measure)
