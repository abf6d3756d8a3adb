"""The lab engine's rules, seen through the CLI: listing, refusals, hints, debriefs, progress."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import subprocess
from typing import IO

import pytest
from rich.console import Console

from mlops_lab.lab_engine import golden
from mlops_lab.lab_engine.catalog import all_labs, find
from mlops_lab.lab_engine.engine import GOLDEN_CHAMPION, Engine
from mlops_lab.lab_engine.kit import LabContext
from mlops_lab.lab_engine.progress import IN_PROGRESS, LabProgress, ProgressStore
from platform_core.locks import learner_lock_path
from platform_core.settings import Settings
from tests.lock_holder import holding, release
from tests.support import (
    CLI,
    env_for,
    make_settings,
    platform_environment,
    remove_platform_files,
    run_cli,
    wait_for,
)


def test_list_json_describes_every_lab(unstarted_settings: Settings) -> None:
    result = run_cli(unstarted_settings, "lab", "list", "--json")

    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["id"] for row in rows] == [lab.id for lab in all_labs()]
    for row in rows:
        assert set(row) == {
            "id",
            "slug",
            "title",
            "runtime",
            "difficulty",
            "minutes",
            "variants",
            "status",
        }
        assert row["runtime"] in ("local", "kind", "any")
        assert row["status"] == "not started"
        assert row["variants"] == len(find(row["id"]).variants) >= 1
    assert len(rows) >= 5
    # Labs whose incident varies draw one of at least three.
    assert all(row["variants"] == 1 or row["variants"] >= 3 for row in rows)


def test_start_refuses_when_the_platform_is_not_running(unstarted_settings: Settings) -> None:
    result = run_cli(unstarted_settings, "lab", "start", "02")

    assert result.returncode == 1
    assert "not running" in result.stderr
    assert "make up" in result.stderr


def _line_with(stream: IO[str], text: str) -> str | None:
    """The first line of ``stream`` that holds ``text``; None if it ends without one."""
    return next((line.strip() for line in stream if text in line), None)


def test_a_lab_start_during_another_waits_for_it_then_refuses_a_second_lab(
    unstarted_settings: Settings,
) -> None:
    env = env_for(unstarted_settings)
    lock = learner_lock_path(unstarted_settings)
    # The first `lab start 02` is still injecting its fault when `lab start 03` comes.
    with holding(lock, ["lab", "start", "02"], env=env, then_start="02") as first:
        second = subprocess.Popen(
            [CLI, "lab", "start", "03"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert second.stderr is not None
        waiting = _line_with(second.stderr, "Waiting for")
        release(first)
        _, rest = second.communicate(timeout=120)

    assert waiting == f"Waiting for `mlops-lab lab start 02` (pid {first.pid}) to finish…"
    assert second.returncode == 1
    assert "Lab 02 is in progress" in rest
    assert ProgressStore(unstarted_settings.learner_home).in_progress() == ["02"]


def test_unknown_lab_names_the_known_ones(unstarted_settings: Settings) -> None:
    result = run_cli(unstarted_settings, "lab", "check", "99")

    assert result.returncode == 1
    assert "no lab '99'" in result.stderr
    assert "01" in result.stderr


def test_debrief_waits_for_a_solve_unless_spoiled(unstarted_settings: Settings) -> None:
    refused = run_cli(unstarted_settings, "lab", "debrief", "02")
    spoiled = run_cli(unstarted_settings, "lab", "debrief", "02", "--spoil")

    assert refused.returncode == 1
    assert "--spoil" in refused.stderr
    assert spoiled.returncode == 0
    assert "Root cause" in spoiled.stdout


def test_progress_survives_down_and_clean(unstarted_settings: Settings) -> None:
    store = ProgressStore(unstarted_settings.learner_home)
    store.save("03", LabProgress(status="solved", hints_used=2, attempts=4, seconds_to_solve=300))
    unstarted_settings.paths.ensure()

    assert run_cli(unstarted_settings, "down").returncode == 0
    assert run_cli(unstarted_settings, "clean", "--yes").returncode == 0
    status = run_cli(unstarted_settings, "lab", "status")

    assert not unstarted_settings.home.exists()
    assert store.get("03").status == "solved"
    assert re.search(r"03 .*solved .*2 .*4 .*5\.0 min", status.stdout), status.stdout
    shutil.rmtree(unstarted_settings.learner_home, ignore_errors=True)


def test_hints_go_up_a_tier_each_time_and_are_counted(platform: Settings) -> None:
    assert run_cli(platform, "lab", "start", "02", "--seed", "0").returncode == 0
    try:
        tiers = [run_cli(platform, "lab", "hint", "02") for _ in range(5)]
        texts = [t.stdout for t in tiers]
        assert all(t.returncode == 0 for t in tiers)
        assert "Hint 1/4" in texts[0] and "Hint 2/4" in texts[1] and "Hint 4/4" in texts[4]
        # The second tier looks at the platform now: it quotes the incomes it sees (seed 0 draws
        # the first variant, incomes in thousands; another seed may draw another feature).
        assert "median annual_income" in " ".join(texts[1].split())
        assert ProgressStore(platform.learner_home).get("02").hints_used == 4
        with platform_environment(platform):
            ctx = LabContext(platform)
            wait_for(lambda: golden.drifted(ctx.drift_status()), 120, what="the incident's drift")
    finally:
        assert run_cli(platform, "lab", "reset", "02").returncode == 0
    # Given up on, not solved: the drift monitor's window held the incident's traffic, and its
    # alert would have started a retrain on it in the next lab. The reset leaves golden.
    with platform_environment(platform):
        failed = [c for c in golden.conditions(LabContext(platform)) if not c.passed]
    assert not failed, "; ".join(f"{c.name}: {c.detail}" for c in failed)


def test_learner_folder_is_outside_the_data_dir() -> None:
    settings = make_settings()
    try:
        assert not settings.learner_home.resolve().is_relative_to(settings.home.resolve())
    finally:
        remove_platform_files(settings)


def test_one_lab_at_a_time_and_its_reset_settles_the_retrain_it_started(
    platform: Settings,
) -> None:
    # An alert during a lab starts a retrain; if it outlived the reset, its gate could promote
    # a model after the reset had put the golden champion back, and serving would lag behind.
    # Lab 05's traffic is sound (serving is down), so the retrain learns nothing broken.
    from prefect.deployments import run_deployment

    from mlops_lab.lab_engine.golden import served_version
    from mlops_lab.lab_engine.kit import active_runs
    from monitoring.receiver import RETRAIN_DEPLOYMENT

    ctx = LabContext(platform)
    first = run_cli(platform, "lab", "start", "05", "--seed", "0")
    try:
        assert first.returncode == 0, first.stderr
        # One lab at a time: a second start is refused, and names the lab in progress.
        second = run_cli(platform, "lab", "start", "02")
        assert second.returncode == 1
        assert "Lab 05 is in progress" in second.stderr
        assert "lab reset 05" in second.stderr
        assert ProgressStore(platform.learner_home).get("05").status == IN_PROGRESS
        with platform_environment(platform):
            before = str(ctx.require_champion().version)  # the start trains one if there is none
            run_deployment(
                RETRAIN_DEPLOYMENT, parameters={"reason": "alert during a lab"}, timeout=0
            )
    finally:
        reset = run_cli(platform, "lab", "reset", "05")
    with platform_environment(platform):
        assert reset.returncode == 0, reset.stderr
        assert not active_runs(ctx.retrain_runs())
        # Whatever the retrain's gate decided, the champion from before the lab is back.
        assert str(ctx.require_champion().version) == before
        assert served_version(ctx) == before


def test_a_reset_leaves_live_performance_above_the_floor(
    platform: Settings, ctx: LabContext
) -> None:
    """After an incident about outcomes (labs 03, 08), the newest labelled predictions are the
    incident's: live ROC AUC stays under the floor with no new outcomes to replace them, and its
    alert would start a retrain in the next lab. The reset leaves a window that measures well."""
    with platform_environment(platform):
        golden.ensure_champion(ctx)
        before = str(ctx.require_champion().version)
    records = ctx.sample_records(platform.drift_window_rows, seed=23)
    answer = ctx.predict(records)
    answer.raise_for_status()
    body = answer.json()
    # Every outcome the opposite of what the model expected: the worst live AUC there is.
    labels = [
        {"request_id": body["request_id"], "record_index": i, "label": int(p < 0.5)}
        for i, p in enumerate(body["probabilities"])
    ]
    stored = ctx.feedback(labels)
    assert stored.json()["stored"] == len(labels), stored.text

    def live_auc() -> float | None:
        return golden.live_auc(ctx.drift_status())

    floor = platform.gate_min_auc
    wait_for(lambda: (auc := live_auc()) is not None and auc < floor, 60, what="a low live AUC")
    with platform_environment(platform):
        from prefect.deployments import run_deployment

        from mlops_lab.lab_engine.kit import active_runs
        from monitoring.receiver import RETRAIN_DEPLOYMENT

        # What the performance alert does: a retrain on these outcomes. Its model must not
        # become the next test's champion (it did, late: the next lab's reset could never find
        # that model's own window sound, live AUC 0.679), so this goes back as a lab's reset.
        run_deployment(RETRAIN_DEPLOYMENT, parameters={"reason": "low live AUC"}, timeout=0)
        golden.back_to_golden(ctx, before)
        assert not active_runs(ctx.retrain_runs())
        failed = [c for c in golden.conditions(ctx) if not c.passed]

    assert not failed, "; ".join(f"{c.name}: {c.detail}" for c in failed)
    assert str(ctx.require_champion().version) == before
    after = live_auc()
    assert after is not None and after >= floor, after


def test_a_reset_brings_back_the_champion_from_before_the_lab(
    platform: Settings, ctx: LabContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever made another version champion during a lab, the reset makes the champion from
    before the lab champion again, serving answers with it, and the drift monitor's window is
    sound against it. Here the other version (trained on the unit bug's incomes, as a retrain
    on the incident's traffic would be) is promoted at the worst moment: inside the reset, just
    as it judges the window. It then refilled the window from that model's reference, so the
    champion from before found the window drifted and its alert started a retrain in the next
    lab (lab 01 in a fresh-clone run: annual_income)."""
    from pipelines import registry
    from pipelines.flows import train

    started = run_cli(platform, "lab", "start", "01", "--seed", "0")
    assert started.returncode == 0, started.stderr
    with platform_environment(platform):
        # What the engine recorded at the start: a retrain an earlier test's alert started
        # may promote between the start and this line, and the reset must undo that too.
        before = ProgressStore(platform.learner_home).get("01").state[GOLDEN_CHAMPION]
        with contextlib.redirect_stdout(io.StringIO()):
            other = train(scenario="unit_bug", rows=2_000, seed=606).version
        refill, promoted = golden.refill_monitor_window, []

        def promoted_first(ctx: LabContext, champion) -> None:
            if not promoted:  # once: the retrain that ended as the reset judged the window
                registry.promote(ctx.mlflow, platform, other, by="test: an alert's retrain")
                golden.wait_until_served(ctx, other)
                promoted.append(other)
                champion = ctx.require_champion()
            refill(ctx, champion)

        monkeypatch.setattr(golden, "refill_monitor_window", promoted_first)
        said = io.StringIO()
        engine = Engine(platform, console=Console(file=said, width=200))
        engine.reset(find("01"))
        monkeypatch.undo()

        assert f"v{before}, the champion from before the lab, is champion again" in said.getvalue()
        assert str(ctx.require_champion().version) == before != other
        assert golden.served_version(ctx) == before
        failed = [c for c in golden.conditions(ctx) if not c.passed]
    assert not failed, "; ".join(f"{c.name}: {c.detail}" for c in failed)


def test_a_reset_waits_for_a_retrain_the_api_shows_ended_but_the_flows_service_still_runs(
    platform: Settings,
) -> None:
    """The race behind a reset that left a retrain's model champion: the run was cancelled just
    as the flows service picked it up, so the API showed it ended while its process trained on,
    and Prefect let it move back to Running and promote after the reset. Forced here: the run is
    cancelled by force while it runs."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment
    from prefect.states import Cancelled

    from mlops_lab.lab_engine.kit import active_runs
    from monitoring.receiver import RETRAIN_DEPLOYMENT

    ctx = LabContext(platform)
    with platform_environment(platform):
        golden.ensure_champion(ctx)
        before = str(ctx.require_champion().version)
        try:
            # Called from sync code: a FlowRun, whatever Prefect's dispatch is typed as.
            run: FlowRun = run_deployment(  # pyright: ignore[reportAssignmentType]
                RETRAIN_DEPLOYMENT, parameters={"reason": "the race"}, timeout=0
            )
            wait_for(lambda: ctx.flows_executing(), 60, what="the flows service to pick the run up")
            with get_client(sync_client=True) as client:
                client.set_flow_run_state(run.id, Cancelled(message="stale cancel"), force=True)
            assert not active_runs(ctx.retrain_runs())  # ended, as far as the API says

            golden.settle_retrains(ctx)

            assert ctx.flows_executing() == []
            assert not active_runs(ctx.retrain_runs())
        finally:
            # The run trains on to its gate, on whatever traffic earlier tests left, and may
            # promote: a fresh-clone run's did, a model below the floor on its own reference,
            # and no reset of the labs after it could pass. The next test starts from golden.
            golden.back_to_golden(ctx, before)


def test_a_models_line_is_followed_back_to_a_simulated_world(platform: Settings) -> None:
    """A model trained on the incident's generator, then retrained on logged traffic on top of
    its reference (what the retrain a drift alert starts does next), passed lab 07 in a
    fresh-clone run: the child had traffic since the change in its tags. Its line is followed
    back through each retrain's `reference_of` to the simulated ancestor."""
    import time

    from pipelines.lineage import TAG_REFERENCE_OF
    from platform_core.contract import TAG_DATA_SOURCE

    settings = platform.model_copy(update={"model_name": "lineage-check"})
    ctx = LabContext(settings)
    before = time.time() - 1.0
    ctx.mlflow.create_registered_model(settings.model_name)

    def register(tags: dict[str, str]) -> str:
        run = ctx.mlflow.create_run("0")
        version = ctx.mlflow.create_model_version(
            settings.model_name, f"{run.info.artifact_uri}/model", run.info.run_id, tags=tags
        )
        return str(version.version)

    try:
        old = register({TAG_DATA_SOURCE: "scenario:baseline"})
        oracle = register({TAG_DATA_SOURCE: "scenario:new_segment", TAG_REFERENCE_OF: old})
        child = register({TAG_DATA_SOURCE: "retrain:drift", TAG_REFERENCE_OF: oracle})
        grandchild = register({TAG_DATA_SOURCE: "retrain:drift", TAG_REFERENCE_OF: child})
        honest = register({TAG_DATA_SOURCE: "retrain:drift", TAG_REFERENCE_OF: old})
        after = time.time() + 1.0

        found = golden.simulator_ancestor(ctx, grandchild, before)
        assert found is not None and str(found.version) == oracle
        assert golden.simulator_ancestor(ctx, honest, before) is None
        # Trained on a simulator before the incident began: the platform's own baseline past.
        assert golden.simulator_ancestor(ctx, grandchild, after) is None
        ctx.mlflow.delete_model_version(settings.model_name, oracle)
        assert golden.simulator_ancestor(ctx, grandchild, before) is None  # the line ends there
    finally:
        ctx.mlflow.delete_registered_model(settings.model_name)
