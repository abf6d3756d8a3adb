"""The platform's promises under faults, proved together in one run under 50 requests/s.

The tests run in file order on one platform (see conftest.py): hot swaps and a rollback, serving
killed three times, MLflow down with the prediction-log database down inside that window,
schemathesis on the API, and last the prediction log checked against every successful answer.
Figures go to the run's summary file (a JSON dict) and one printed line.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from collections import Counter
from typing import Any

import hypothesis
import schemathesis
import sqlalchemy as sa
from schemathesis import GenerationMode

from mlops_lab.runtime.kube.host_processes import alive
from pipelines import registry
from platform_core import contract
from platform_core.prediction_log import predictions
from tests import models
from tests.reliability.conftest import RPS, Run, children, orphans, queue_depth
from tests.serving.conftest import metric
from tests.support import CLI, env_for, wait_for

KILLS = 3
MLFLOW_DOWN_S = 30.0
LOG_DB_DOWN_S = 20.0


def _failed(outcomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in outcomes if o["status"] != 200]


def _describe(failed: list[dict[str, Any]]) -> str:
    kinds = Counter(str(o["status"] or o["error"]) for o in failed)
    return f"{len(failed)} failed ({dict(kinds)}), e.g. {failed[:2]}"


def test_three_hot_swaps_and_a_rollback_fail_no_request(run: Run) -> None:
    client = contract.client_for(run.settings)
    new = [models.register_model(run.settings, seed=s, rows=600).version for s in (2, 3, 4)]
    start = time.monotonic()
    swaps = []
    for version in new:
        moved = time.monotonic()
        registry.promote(client, run.settings, version, by="reliability suite")
        swaps.append(run.wait_for_answers_from(version, moved) - moved)
    moved = time.monotonic()
    # What `mlops-lab model rollback` does, without the seconds of starting the CLI.
    move = registry.rollback(client, run.settings)
    assert (move.previous, move.current) == (new[2], new[1])
    run.champion = new[1]
    rollback_s = run.wait_for_answers_from(new[1], moved) - moved
    outcomes = run.load.settled(start, time.monotonic() + 1)
    run.record(
        swaps_s=[round(s, 2) for s in swaps],
        rollback_s=round(rollback_s, 2),
        swap_requests=len(outcomes),
        swap_failed=len(_failed(outcomes)),
    )
    assert not _failed(outcomes), _describe(_failed(outcomes))
    assert {o["version"] for o in outcomes} >= set(new)


def test_serving_killed_three_times_is_restarted_and_fails_only_meanwhile(run: Run) -> None:
    start = time.monotonic()
    windows = []
    worker_exits = []
    for _ in range(KILLS):
        killed_pid = run.supervisor.process_info()["serving"]["pid"]
        workers = children(run.settings, killed_pid)
        killed = time.monotonic()
        run.supervisor.signal_process("serving", "KILL")

        def restarted(pid: int = killed_pid) -> bool:
            info = run.supervisor.process_info()["serving"]
            return info["statename"] == "RUNNING" and info["pid"] != pid

        wait_for(restarted, 120, what="supervisord to restart serving")
        # Until the killed process's worker has exited, the answers may still come from it.
        wait_for(
            lambda ws=workers: not any(alive(w) for w in ws),
            60,
            what=f"the worker of the killed serving ({workers}) to exit",
        )
        worker_exits.append(time.monotonic() - killed)
        wait_for(
            lambda: metric(run.url, "serving_model_version") == float(run.champion),
            120,
            interval_s=0.2,
            what="the restarted serving to load the champion",
        )
        windows.append((killed, time.monotonic()))
        time.sleep(1)  # steady answers between two kills
    outcomes = run.load.settled(start, time.monotonic())

    def in_window(o: dict[str, Any]) -> bool:
        # A request in flight at the kill may fail too: under load the client's event loop can
        # open the connection a second or two after it took the send time.
        return any(o["sent"] <= end and o["answered"] >= begin for begin, end in windows)

    failed = _failed(outcomes)
    retried_ok = [o for o in failed if o["retry"]["status"] == 200]
    late_retries = [o["retry"] for o in failed if not in_window(o["retry"])]
    run.record(
        kill_windows_s=[round(end - begin, 1) for begin, end in windows],
        killed_worker_gone_s=[round(s, 1) for s in worker_exits],
        kill_requests=len(outcomes),
        kill_success_ratio=round(1 - len(failed) / len(outcomes), 4),
        kill_success_ratio_one_retry=round(1 - (len(failed) - len(retried_ok)) / len(outcomes), 4),
        kill_failures=dict(Counter(str(o["status"] or o["error"]) for o in failed)),
        orphans_after_kills=len(orphans(run.settings)),
    )
    outside = [o for o in failed if not in_window(o)]
    assert not outside, "outside the kill windows: " + _describe(outside)
    # Between a kill and the restart a client sees a refused connection or 503 "not ready" (the
    # model is loading); never another server error.
    assert {o["status"] for o in failed} <= {0, 503}, _describe(failed)
    assert all(o["status"] == 200 for o in late_retries), _describe(late_retries)
    # The killed process's worker must not outlive it: it would hold the port and the log queue.
    assert not orphans(run.settings), "processes of the killed serving still run"


def _registered_versions(run: Run) -> int:
    """Versions in MLflow's own store, read directly: no need to wait for MLflow to restart
    (~50 s on a busy machine; tests/serving/test_registry_outage.py covers serving's recovery)."""
    store = sqlite3.connect(f"file:{run.settings.paths.mlflow / 'mlflow.db'}?mode=ro", uri=True)
    try:
        query = "SELECT count(*) FROM model_versions WHERE name = ?"
        return store.execute(query, (run.settings.model_name,)).fetchone()[0]
    finally:
        store.close()


def test_mlflow_and_log_database_down_answers_continue_and_nothing_is_lost(run: Run) -> None:
    """MLflow stopped for 30 s and, within that, the prediction-log database for 20 s (nested,
    to keep the suite short): every request is answered by the last good model, a training run
    fails with a clear message and registers nothing, and the log rows wait in the queue until
    the database returns."""
    versions_before = _registered_versions(run)
    written = "serving_prediction_log_written_total"
    written_before = metric(run.url, written) or 0.0
    mlflow_stopped = time.monotonic()
    run.supervisor.rpc.stopProcess("mlflow", True)
    try:
        train = subprocess.Popen(
            [CLI, "train", "--rows", "500"],
            env=env_for(run.settings),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        db_stopped = time.monotonic()
        run.pg.stop()
        db_down = time.monotonic()  # no row can be written from here on
        samples = []
        try:
            while time.monotonic() - db_stopped < LOG_DB_DOWN_S:
                at = time.monotonic()
                samples.append((at, queue_depth(run.url) or 0.0))
                time.sleep(1)
        finally:
            db_restarted = time.monotonic()
            run.pg.start()
        _, train_errors = train.communicate(timeout=120)
        time.sleep(max(0.0, MLFLOW_DOWN_S - (time.monotonic() - mlflow_stopped)))
    finally:
        mlflow_restarted = time.monotonic()
        run.supervisor.rpc.startProcess("mlflow", True)
    # Drained: what is left is at most the rows of the last flush interval (the load goes on).
    wait_for(
        lambda: (depth := queue_depth(run.url)) is not None and depth < RPS,
        60,
        what="the queued rows to be written",
    )
    drained_s = time.monotonic() - db_restarted
    outcomes = run.load.settled(mlflow_stopped, mlflow_restarted)
    queued = max(depth for _, depth in samples)
    run.record(
        mlflow_down_requests=len(outcomes),
        mlflow_down_failed=len(_failed(outcomes)),
        log_db_down_requests=len(run.load.settled(db_stopped, db_restarted)),
        log_rows_queued_max=int(queued),
        log_rows_written_since_outage=int((metric(run.url, written) or 0.0) - written_before),
        log_drained_s=round(drained_s, 1),
    )
    assert not _failed(outcomes), _describe(_failed(outcomes))
    assert {o["version"] for o in outcomes} == {run.champion}

    assert train.returncode != 0
    assert f"MLflow is not reachable at {run.settings.mlflow_url}" in train_errors, train_errors
    assert "Traceback" not in train_errors, train_errors
    assert _registered_versions(run) == versions_before

    # Every answer given while the database was down waited in the queue, and was written.
    last_at, last_depth = samples[-1]
    answered = sum(1 for o in outcomes if o["status"] == 200 and db_down <= o["answered"] < last_at)
    assert answered > 0
    assert last_depth >= answered
    assert run.figures["log_rows_written_since_outage"] >= queued


SCHEMATHESIS_EXAMPLES = 50  # per generation mode: ~15 s on a busy 2-core machine


def _has_message(body: Any) -> bool:
    """A 4xx body that tells the client what was wrong: an error text or validation details."""
    if isinstance(body, dict):
        return bool(body.get("error") or body.get("detail") or body.get("message"))
    return bool(body)


def test_no_generated_input_gets_a_server_error_and_every_4xx_says_why(run: Run) -> None:
    schema = schemathesis.openapi.from_url(f"{run.url}/docs.json")
    seen: Counter[str] = Counter()
    bad: list[str] = []

    def check(case: schemathesis.Case) -> None:
        response = case.call(base_url=run.url, timeout=30)
        where = f"{case.method} {case.path}"
        seen[f"{response.status_code // 100}xx"] += 1
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if response.status_code >= 500:
            bad.append(f"{where} -> {response.status_code} {response.text[:200]} for {case.body}")
        elif response.status_code >= 400 and not _has_message(body):
            bad.append(f"{where} -> {response.status_code} without a message for {case.body}")
        elif response.status_code == 200 and case.path == "/predict":
            answer = response.json()
            run.other_answers[answer["request_id"]] = len(answer["predictions"])

    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        hypothesis.settings(
            max_examples=SCHEMATHESIS_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
            # Hypothesis' HealthCheckMeta.__iter__ is untyped, so pyright reads it as yielding
            # the metaclass; it yields every HealthCheck that is not deprecated.
            suppress_health_check=list(hypothesis.HealthCheck),  # pyright: ignore[reportArgumentType]
        )(hypothesis.given(schema.as_strategy(mode))(check))()
    run.record(schemathesis_answers=dict(seen), schemathesis_bad=len(bad))
    assert not bad, "\n".join(bad[:10])
    assert seen["2xx"] and seen["4xx"], seen


# aiohttp's errors once a request was sent: the server may have answered it.
_MAY_HAVE_BEEN_ANSWERED = {"TimeoutError", "ClientOSError", "ServerDisconnectedError"}


def test_the_prediction_log_holds_every_successful_answer_once(run: Run) -> None:
    outcomes = run.load.stop()
    expected = dict(run.other_answers)
    for outcome in outcomes:
        for attempt in (outcome, outcome.get("retry") or {}):
            if attempt.get("status") == 200:
                expected[attempt["rid"]] = 1
    wait_for(lambda: queue_depth(run.url) == 0, 30, what="serving to write its queued rows")
    query = sa.select(
        predictions.c.request_id,
        sa.func.count(),
        sa.func.count(sa.distinct(predictions.c.record_index)),
    ).group_by(predictions.c.request_id)
    with run.log_db.connect() as conn:
        logged = {rid: (rows, distinct) for rid, rows, distinct in conn.execute(query)}
    lost = [rid for rid, n in expected.items() if logged.get(rid, (0, 0))[1] < n]
    doubled = [rid for rid, (rows, distinct) in logged.items() if rows > distinct]
    unknown = [rid for rid in logged if rid not in expected]
    # A request the client gave up on after it reached serving (no answer in time, or the
    # connection reset) may have been answered and logged: its id never reached the client.
    attempts = [a for o in outcomes for a in (o, o.get("retry") or {}) if a]
    unseen = [a for a in attempts if a["status"] == 0 and a["error"] in _MAY_HAVE_BEEN_ANSWERED]
    answered = sum(1 for o in outcomes if o["status"] == 200)
    run.record(
        load_requests=len(outcomes),
        load_success_ratio=round(answered / len(outcomes), 4),
        log_rows=sum(rows for rows, _ in logged.values()),
        rows_expected=sum(expected.values()),
        rows_lost=len(lost),
        rows_doubled=len(doubled),
        rows_of_answers_the_client_gave_up_on=len(unknown),
        client_gave_up_after_sending=len(unseen),
    )
    print(f"\nreliability figures ({run.summary}): {json.dumps(run.figures)}")
    assert not lost and not doubled and len(unknown) <= len(unseen), run.figures
