"""The golden state every lab starts from and every reset returns to, and the check of it.

Golden: every platform service healthy, a champion that serving answers with (no rollout of a
candidate beside it, no feature transform declared on it that its model was not trained with),
every Prometheus
target up, a drift monitor that finds neither drift nor live performance under the floor, no
service configuration overrides, the front end stopped with its default configuration. Reset
gets there from any state a lab (or a learner) left behind, without deleting anything:
versions, runs, the prediction log and metrics history stay as evidence.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Iterator

import httpx

from mlops_lab.front_end import config as front_end_config
from mlops_lab.lab_engine.kit import Condition, LabContext, active_runs
from pipelines.lineage import EvaluateOn
from platform_core.errors import PlatformError


def require_platform_up(ctx: LabContext) -> None:
    rows = [r for r in ctx.runtime.status() if r.state not in ("not installed", "on demand")]
    down = [r for r in rows if not r.healthy]
    if not ctx.runtime.is_running():
        raise PlatformError(
            "The platform is not running, so there is nothing to break yet.",
            hint="Start it with `make up`, then start the lab again.",
        )
    if down:
        names = ", ".join(f"{r.name} ({r.state}: {r.detail})" for r in down)
        raise PlatformError(
            f"The platform is not healthy: {names}. A lab needs a healthy platform to start from.",
            hint="`mlops-lab up` starts what is stopped; a lab in progress is put back with "
            "`mlops-lab lab reset ID`.",
        )


def ensure_champion(ctx: LabContext) -> None:
    """Labs break a serving platform: train the first champion if there is none yet."""
    if ctx.champion() is not None:
        return
    ctx.say("No champion yet: training a baseline model first (about half a minute)…")
    outcome = train_baseline(ctx)
    if not outcome.promoted:
        raise PlatformError(f"The baseline model did not become champion: {outcome.reason}")
    wait_until_served(ctx, outcome.version)


def train_baseline(ctx: LabContext, rows: int | None = None, seed: int | None = None):
    """Run the `train` flow on baseline data, as `mlops-lab train` does; returns its outcome."""
    from pipelines.flows import train

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return train(scenario="baseline", rows=rows or ctx.settings.default_rows, seed=seed)


def register_release(
    ctx: LabContext,
    frame,
    seed: int,
    release: str,
    *,
    source: str = "scenario:baseline",
    run_name: str | None = None,
    tags: dict[str, str] | None = None,
):
    """The platform's pipeline trained on ``frame`` (generated features) and registered as
    release ``release`` of data ``source`` would be by a release pipeline, without the gate: a
    lab's bad release. Its run is named after the release unless ``run_name`` says otherwise.
    Returns its version."""
    from pipelines import training
    from pipelines.sources import generated_types
    from platform_core import contract

    types = generated_types()
    parts = training.split(frame, types, seed)
    model = training.build_pipeline(types, seed).fit(parts.X_train, parts.y_train)
    return training.log_and_register(
        ctx.settings,
        model,
        parts,
        types,
        training.evaluate(model, parts.X_test, parts.y_test),
        training.reference_sample(frame, 2_000, seed),
        tags={
            contract.TAG_DATA_HASH: training.data_hash(frame),
            contract.TAG_DATA_SOURCE: source,
            contract.TAG_CODE_VERSION: release,
            **(tags or {}),
        },
        run_name=run_name or release,
    )


def roll_out_release(ctx: LabContext, frame, seed: int, release: str, source: str, plan):
    """A lab's bad release (trained on ``frame``, see :func:`register_release`) rolled out
    beside the champion as ``plan`` says, as its release pipeline would. Returns the champion's
    version and the release's, as the lab's state records them."""
    from pipelines import rollout

    good = ctx.require_champion()
    version = register_release(ctx, frame, seed, release, source=source)
    candidate = str(version.version)
    rollout.start(ctx.mlflow, ctx.settings, candidate, plan, by=f"release pipeline ({release})")
    return {"good": str(good.version), "candidate": candidate}


def serving_answer(ctx: LabContext) -> tuple[str | None, str]:
    """The version one real prediction answers with, or None and what serving said instead
    (serving restarting refuses the connection: a check reads that as "not answering")."""
    try:
        response = ctx.predict(ctx.sample_records(1))
    except httpx.TransportError as error:
        return (
            None,
            f"/predict does not answer at {ctx.serving_url} ({str(error) or type(error).__name__})",
        )
    if response.status_code != 200:
        return None, f"/predict answers HTTP {response.status_code}: {response.text[:300]}"
    return str(response.json()["model_version"]), ""


def served_version(ctx: LabContext) -> str | None:
    return serving_answer(ctx)[0]


def wait_until_served(ctx: LabContext, version: str, timeout_s: float = 90.0) -> None:
    ctx.wait_until(
        lambda: served_version(ctx) == str(version),
        timeout_s,
        f"serving to answer with version {version}",
    )


def retrain_on_recent_outcomes(
    ctx: LabContext,
    since: float,
    min_rows: int,
    reason: str,
    attempts: int = 3,
    evaluate_on: EvaluateOn = "holdout",
) -> None:
    """A reference fix of the labs where the world changed: once ``min_rows`` outcomes have
    arrived since ``since``, retrain on them alone (judged on ``evaluate_on``, as the retrain
    flow takes it) and wait until serving answers with the new champion.

    A few hundred outcomes make a small held-out set: a sound model can score just under the
    gate's floor on it (about one time in eight at 600 rows). As a learner would, the fix then
    waits for as many outcomes again and retrains on all of them, up to ``attempts`` times."""
    from mlops_lab.runtime.current import prediction_log_in_reach
    from pipelines.flows import retrain

    for attempt in range(1, attempts + 1):
        wanted = min_rows * attempt
        ctx.wait_until(
            lambda wanted=wanted: len(ctx.logged(since, labelled=True)) >= wanted,
            300,
            f"{wanted} outcomes since the change",
        )
        settle_retrains(ctx, cancel_queued=False)
        labelled = len(ctx.logged(since, labelled=True))
        with prediction_log_in_reach(ctx.settings, ctx.runtime):
            outcome = retrain(
                reason=reason, traffic_rows=labelled, recent_only=True, evaluate_on=evaluate_on
            )
        if outcome.promoted:
            wait_until_served(ctx, outcome.version)
            return
        ctx.say(f"The gate kept v{outcome.version} as challenger: {outcome.reason}")


def restore_lab_champion(ctx: LabContext, before: str | None) -> bool:
    """The champion from before the lab back, whatever replaced it during the lab: the lab's
    own bad release, a learner's fix, or a retrain an alert started on the incident's traffic.
    The next lab starts from the model the platform had, not from one that learned this
    incident (its reference sample would make ordinary traffic look drifted). True when it
    promoted it (serving follows within an alias poll)."""
    from pipelines import registry

    champion = ctx.champion()
    if not before or (champion is not None and str(champion.version) == before):
        return False
    if before not in {str(v.version) for v in ctx.versions()}:
        ctx.say(f"v{before}, the champion from before the lab, is gone from the registry.")
        return False
    registry.promote(ctx.mlflow, ctx.settings, before, by="lab reset")
    ctx.say(f"v{before}, the champion from before the lab, is champion again.")
    return True


# A reset puts the platform back at most this many times while retrains replace its champion.
RESTORE_ROUNDS = 3


def back_to_golden(ctx: LabContext, before: str | None) -> None:
    """After an incident: the retrains it set off settled, the champion from before it
    (``before``) champion again, the platform restored; again while a retrain replaces that
    champion. What every lab reset does, and what anything that simulates an incident must do
    after it (a retrain its alert started would otherwise promote, after the restore, a model
    that learned the incident)."""
    settle_retrains(ctx)
    restore_lab_champion(ctx, before)
    restore(ctx)
    for _ in range(RESTORE_ROUNDS):
        # A notification of the incident's alert that arrived while the platform was being
        # put back may have started a retrain: let it end, and keep the champion from before.
        settle_retrains(ctx)
        if not (before and restore_lab_champion(ctx, before)):
            break
        wait_until_served(ctx, before)
        # The restore judged the drift monitor's window against the champion that has just
        # been replaced (and may have refilled it from that model's reference): again.
        restore(ctx)


# The labels of the alerts that start a retrain (monitoring.rules.model_rules).
RETRAIN_ALERTS = {"action": "retrain"}


def retrain_alerts(ctx: LabContext) -> list[dict]:
    """The label sets of the alerts that start a retrain, pending or firing in Prometheus."""
    matchers = ",".join(f'{name}="{value}"' for name, value in RETRAIN_ALERTS.items())
    return [r["metric"] for r in ctx.query(f"ALERTS{{{matchers}}}")]


@contextlib.contextmanager
def retrains_paused(ctx: LabContext, why: str) -> Iterator[None]:
    """No alert starts a retrain inside the block: Alertmanager silences the alerts that would
    (they still fire in Prometheus). What an engineer does while fixing a data bug at its source,
    and what a fix or a reset needs so that a notification delayed on a busy machine cannot
    start a retrain on the incident's traffic after it settled the runs. The silence ends with
    the block; one left by a crash ends within the hour."""
    if not ctx.runtime.monitoring_installed():
        yield
        return
    silence = ctx.silence(RETRAIN_ALERTS, 60, f"mlops-lab {why}: automatic retrains paused")
    try:
        yield
    finally:
        ctx.expire_silence(silence)


def await_retrain_alerts_resolved(ctx: LabContext, timeout_s: float = 300.0) -> None:
    """Wait until no alert that starts a retrain is pending or firing in Prometheus, nor held
    by Alertmanager, for as long as a scrape, a rule evaluation and Alertmanager's group wait
    take (a stale sample cannot then start one). The drift monitor checks first, so its gauges
    describe the traffic now. In :func:`retrains_paused`, a silence can end after this without
    a notification going out."""
    settings = ctx.settings
    ctx.check_drift_now()
    quiet_for = (
        settings.scrape_interval_s
        + settings.rule_evaluation_interval_s
        + settings.alert_group_wait_s
        + 2.0
    )
    ctx.say(f"Waiting until no alert that would start a retrain is pending ({quiet_for:.0f}s)…")
    quiet_since: list[float] = []

    def resolved() -> bool:
        if retrain_alerts(ctx) or ctx.held_alerts(**RETRAIN_ALERTS):
            quiet_since.clear()
            return False
        if not quiet_since:
            quiet_since.append(time.monotonic())
        return time.monotonic() - quiet_since[0] >= quiet_for

    ctx.wait_until(resolved, timeout_s + quiet_for, "the alerts that start a retrain to resolve")


def settle_retrains(ctx: LabContext, cancel_queued: bool = True, timeout_s: float = 300.0) -> None:
    """Let the automation an incident set off end: retrain runs that have not started are
    cancelled (unless ``cancel_queued`` is false: then they are waited for too), and a running
    one is waited for. A reset does this first, or a retrain the incident's alert started could
    promote its model after the reset and leave serving behind; a reference fix does it before
    its own retrain, so the gate compares its model with whatever the automation promoted."""
    try:
        stop_retrain_loops(ctx)
        runs = active_runs(ctx.retrain_runs())
    except Exception as error:  # Prefect down: the reset brings it back, with no run to settle
        ctx.say(f"Prefect does not answer ({type(error).__name__}); no retrain run to settle.")
        return
    if not runs and not ctx.flows_executing():
        return
    if cancel_queued:
        ctx.cancel_queued(runs, "lab reset")
    ctx.say("Waiting for the retrain run the alert started to finish…")
    settled: list[bool] = []

    def nothing_in_flight() -> bool:
        # A run cancelled just as the flows service picked it up ends in the API while its
        # process goes on (Prefect lets a Cancelled run move to Running), and its gate could
        # promote after the reset: settled means no active run in the API and nothing executing
        # in the flows service, seen twice a poll apart.
        quiet = not active_runs(ctx.retrain_runs()) and ctx.flows_executing() == []
        settled.append(quiet)
        return quiet and len(settled) > 1 and settled[-2]

    try:
        ctx.wait_until(nothing_in_flight, timeout_s, "the retrain runs to finish", every_s=2.0)
    except PlatformError as error:
        left = ", ".join(f"{r.name} ({r.state.name})" for r in active_runs(ctx.retrain_runs()))
        raise PlatformError(
            f"{error.message} Still in flight: {left or 'none now'}.",
            hint="`mlops-lab logs flows` shows what the flows service is doing; a run it no "
            "longer executes is ended when it restarts (`mlops-lab restart flows`).",
        ) from error


def stop_retrain_loops(ctx: LabContext) -> None:
    """Pause (never delete: it may be the learner's) every Prefect automation that starts a
    retrain when one gets on: while one is enabled, no run queue ever settles."""
    loops = ctx.retrain_loops()
    if loops:
        ctx.pause_automations(loops)
        names = ", ".join(repr(a.name) for a in loops)
        ctx.say(f"Paused the Prefect automation(s) {names}: each retrain started the next.")


def transform_items(spec: str) -> set[str]:
    """The ``feature:transform`` items of a ``serving_feature_transforms`` value, as a set."""
    return {item.strip() for item in spec.split(",") if item.strip()}


def untrained_transforms(ctx: LabContext, version) -> str:
    """The feature transforms a version declares serving applies before its model (its
    ``serving_feature_transforms`` tag) that its training run does not record it was trained
    with (the same tag on the run): "" when there are none. The platform's own models carry
    their preprocessing in the pipeline, so their runs record none and they need none."""
    from platform_core.contract import TAG_SERVING_TRANSFORMS

    declared = transform_items((version.tags or {}).get(TAG_SERVING_TRANSFORMS, ""))
    if not declared:
        return ""
    return ",".join(sorted(declared - trained_transforms(ctx, version)))


def trained_transforms(ctx: LabContext, version) -> set[str]:
    """The feature transforms a version's training run records it was trained with (empty
    when none, or when the run is gone: nothing then says the model was trained with any)."""
    from mlflow.exceptions import MlflowException

    from platform_core.contract import TAG_SERVING_TRANSFORMS

    if not version.run_id:
        return set()
    try:
        run = ctx.mlflow.get_run(version.run_id)
    except MlflowException:
        return set()
    return transform_items(run.data.tags.get(TAG_SERVING_TRANSFORMS, ""))


def restore_declared_transforms(ctx: LabContext) -> list[str]:
    """Take off every version the serving transforms it declares beyond what it was trained
    with (the whole tag: a partial declaration is nobody's); returns the versions changed.
    Every version, not only the champion: a rollback must not bring a lab's fault back."""
    from platform_core.contract import TAG_SERVING_TRANSFORMS

    changed = []
    for version in ctx.versions():
        if untrained_transforms(ctx, version):
            ctx.mlflow.delete_model_version_tag(
                ctx.settings.model_name, str(version.version), TAG_SERVING_TRANSFORMS
            )
            changed.append(str(version.version))
    return changed


def wait_until_answers_as_registered(ctx: LabContext, version, timeout_s: float = 60.0) -> None:
    """Wait until serving's answers to a few applications equal what the registered model
    computes offline for them (serving reads a version's declared transforms at its next poll)."""
    import numpy as np
    import pandas as pd

    from platform_core import contract

    records = ctx.sample_records(20, seed=13)
    types = contract.load_feature_types(ctx.mlflow, version)
    model = contract.load_sklearn_model(
        contract.model_uri(ctx.settings, version=str(version.version))
    )
    frame = pd.DataFrame.from_records(records, columns=types.names)
    frame = contract.prepare_features(frame, types)
    offline = model.predict_proba(frame)[:, 1]

    def agree() -> bool:
        answer = ctx.predict(records)
        served = answer.json()["probabilities"] if answer.status_code == 200 else None
        return served is not None and bool(np.allclose(served, offline, rtol=0, atol=1e-9))

    ctx.wait_until(agree, timeout_s, f"serving to answer as v{version.version} computes offline")


def restore(ctx: LabContext) -> None:
    """Back to golden from any state: configuration first, then processes, then the model."""
    ctx.stop_front_end()
    front_end_config.write(ctx.front_end_path, ctx.default_front_end())
    for service in ctx.clear_overrides():
        ctx.say(f"Removed the configuration override of {service}.")
    for service in ctx.runtime.restore_configs():
        ctx.say(f"Re-rendered the configuration of {service} from the settings and restarted it.")
    ctx.runtime.up()
    ensure_champion(ctx)
    end_rollout(ctx)
    untagged = restore_declared_transforms(ctx)
    for version in untagged:
        ctx.say(f"v{version} declared feature transforms its model was not trained with: removed.")
    champion = ctx.require_champion()
    wait_until_served(ctx, champion.version)
    if str(champion.version) in untagged:
        wait_until_answers_as_registered(ctx, champion)
    # An alert still pending or firing would reach the receiver: once the cooldown below is gone,
    # it would start a retrain after the reset, on the incident's traffic.
    with retrains_paused(ctx, "reset"):
        refill_monitor_window(ctx, champion)
        if ctx.runtime.monitoring_installed():
            await_retrain_alerts_resolved(ctx)
        # The lab's incidents are over: the next lab's first alert must start its retrain, not
        # meet a cooldown this one left (15 min by default).
        ctx.forget_incidents()
    if ctx.runtime.monitoring_installed():
        # A reloaded Prometheus reports a target up only after its next scrape.
        ctx.wait_until(
            lambda: all(t["health"] == "up" for t in ctx.targets()),
            3 * ctx.settings.scrape_interval_s + 30,
            "Prometheus to scrape every target",
        )


def end_rollout(ctx: LabContext) -> None:
    """Abort a rollout left in progress: a lab's evidence assumes the champion answers all."""
    from pipelines import rollout
    from platform_core import rollout as state

    running = state.current(ctx.mlflow, ctx.settings)
    if running is None:
        return
    rollout.abort(
        ctx.mlflow,
        ctx.settings,
        by="lab reset",
        reason="a reset returns the platform to its golden state, where the champion answers "
        "every request",
    )
    ctx.say(
        f"Aborted the rollout of v{running.version} ({running.plan.describe()}): the champion "
        "answers every request again."
    )


def simulator_ancestor(ctx: LabContext, version: str | None, since: float):
    """The first version in ``version``'s line (itself, then the version whose reference each
    retrain started from) trained since ``since`` on a simulated world other than the baseline:
    the generator behind an incident, an oracle no real team has. None when there is none."""
    from mlflow.exceptions import MlflowException

    from pipelines.lineage import TAG_REFERENCE_OF
    from platform_core.contract import TAG_DATA_SOURCE

    seen: set[str] = set()
    while version is not None and version not in seen:
        seen.add(version)
        try:
            found = ctx.mlflow.get_model_version(ctx.settings.model_name, version)
        except MlflowException:
            return None  # deleted: its line ends here
        tags = found.tags or {}
        source = tags.get(TAG_DATA_SOURCE, "")
        simulated = source.startswith("scenario:") and source != "scenario:baseline"
        if simulated and found.creation_timestamp / 1000 > since:
            return found
        version = tags.get(TAG_REFERENCE_OF)
    return None


def live_performance_recovered(ctx: LabContext, champion, since: float) -> Condition:
    """The outcome every model incident ends with: the champion's answers since it became
    champion (and since the incident began) score at least the gate's floor against the
    outcomes reported for them. A version promoted by hand passes only if it really predicts."""
    current = str(champion.version) if champion is not None else None
    promoted_at = ctx.promoted_at(champion) or since
    auc, labels = ctx.live_auc(current, max(promoted_at, since)) if current else (None, 0)
    floor = ctx.settings.gate_min_auc
    needed = ctx.settings.performance_min_labels
    if auc is not None:
        below = f"v{current} has {labels} labelled answers since it became champion; ROC AUC "
        below += f"{auc:.3f} is below the floor {floor}"
    else:
        below = (
            f"v{current} has {labels} labelled answers since it became champion; at least "
            f"{needed} are needed to measure it (outcomes arrive as the front end reports them)"
        )
    return Condition.of(
        "live performance has recovered",
        auc is not None and auc >= floor,
        f"v{current} has ROC AUC {auc or 0:.3f} on {labels} labelled answers (floor {floor})",
        below if current else "there is no champion",
    )


def drifting_features(status: dict) -> list[str]:
    """The features the drift monitor's latest check found drifted (none without a result)."""
    return [f["feature"] for f in status.get("features") or [] if f.get("drifted")]


def drifted(status: dict) -> bool:
    return bool(status.get("dataset_drifted")) or bool(drifting_features(status))


def live_auc(status: dict) -> float | None:
    """Live ROC AUC as a drift check measured it (None until enough outcomes have arrived)."""
    return (status.get("performance") or {}).get("roc_auc")


def underperforming(ctx: LabContext, status: dict) -> bool:
    """Live ROC AUC is under the gate's floor: the performance alert fires."""
    auc = live_auc(status)
    return auc is not None and auc < ctx.settings.gate_min_auc


def refill_monitor_window(ctx: LabContext, champion) -> None:
    """After an incident the drift monitor's windows still hold the incident's traffic and its
    outcomes: the drift or performance alert would go on firing after the reset (no new traffic
    comes to replace them) and start a retrain on them in the next lab. One window of
    applications drawn from the champion's own reference sample (the data drift is measured
    against, so a clean window whichever data it was trained on), with their recorded outcomes,
    replaces both. Outcomes always: a check that found drift only may find the incident's
    outcomes under the floor once the traffic is replaced (or once late feedback arrived).
    Judged on checks run now, not on the monitor's last scheduled one, which may predate the
    incident's last requests."""
    status = ctx.check_drift_now()
    if not (drifted(status) or underperforming(ctx, status)):
        return
    from platform_core import contract
    from serving.schema import records_from_frame

    rows, batch = ctx.settings.drift_window_rows, ctx.settings.max_batch_records
    types = contract.load_feature_types(ctx.mlflow, champion)
    reference = contract.load_reference(ctx.mlflow, champion)
    sample = reference.sample(rows, replace=len(reference) < rows, random_state=7)
    records = records_from_frame(sample, types.names)
    labels = sample[types.target].astype(int).tolist()
    ctx.say(
        "The drift monitor still measures the incident: sending "
        f"{rows} applications like v{champion.version}'s training data, with their outcomes, so "
        "its alerts resolve…"
    )
    since = time.time()
    for start in range(0, rows, batch):
        answer = ctx.predict(records[start : start + batch])
        answer.raise_for_status()
        request_id = answer.json()["request_id"]
        chunk = enumerate(labels[start : start + batch])
        ctx.feedback(
            [{"request_id": request_id, "record_index": i, "label": y} for i, y in chunk]
        ).raise_for_status()
    last: list[dict] = [status]

    def clean() -> bool:
        last[0] = ctx.check_drift_now()
        return not (drifted(last[0]) or underperforming(ctx, last[0]))

    try:
        # A check takes seconds, tens of them on a busy machine.
        ctx.wait_until(clean, 120, "a drift check of the refilled window to find it sound")
    except PlatformError as error:
        found = ", ".join(drifting_features(last[0])) or "no drifted feature"
        auc = live_auc(last[0])
        raise PlatformError(
            f"{error.message} The last check: {found}; live ROC AUC "
            f"{'not measured' if auc is None else f'{auc:.3f}'} "
            f"(status {last[0].get('status')}: {last[0].get('message')}). "
            + _refill_story(ctx, champion, sample, types, since),
            hint="`mlops-lab drift check` shows the whole table; `mlops-lab lab reset ID` again "
            "once it is sound.",
        ) from error


def _refill_story(ctx: LabContext, champion, sample, types, since: float) -> str:
    """For a refill that did not make the monitor find the window sound: which versions
    answered it, the champion's offline ROC AUC on the same sample, and where the champion came
    from (a champion that cannot pass is one a retrain or a lab left behind)."""
    from sklearn.metrics import roc_auc_score

    from platform_core import contract

    parts = []
    try:
        answered = ctx.logged(since)
        if len(answered):
            counts = answered["model_version"].astype(str).value_counts().to_dict()
            parts.append(f"the refill was answered by {counts}")
        model = contract.load_sklearn_model(
            contract.model_uri(ctx.settings, version=str(champion.version))
        )
        features = contract.prepare_features(sample[types.names], types)
        offline = roc_auc_score(sample[types.target], model.predict_proba(features)[:, 1])
        parts.append(f"v{champion.version}'s offline ROC AUC on it {offline:.3f}")
        tags = {k: v for k, v in (champion.tags or {}).items() if not k.startswith("rollout_")}
        parts.append(f"v{champion.version}'s tags {tags}")
    except Exception as problem:  # a diagnosis must not hide the error it explains
        parts.append(f"(no more detail: {type(problem).__name__}: {problem})")
    return "; ".join(parts) + "."


def conditions(ctx: LabContext) -> list[Condition]:
    """The golden path holds: what every lab's reset must get back to."""
    rows = [r for r in ctx.runtime.status() if r.state not in ("not installed", "on demand")]
    down = [f"{r.name} ({r.detail})" for r in rows if not r.healthy]
    from platform_core import rollout as state

    champion = ctx.champion()
    served = served_version(ctx) if champion is not None else None
    running = state.current(ctx.mlflow, ctx.settings)
    monitored = ctx.runtime.monitoring_installed()
    targets = ctx.targets() if monitored else []
    not_up = [f"{t['labels'].get('job')} ({t.get('lastError') or t['health']})" for t in targets]
    not_up = [n for t, n in zip(targets, not_up, strict=True) if t["health"] != "up"]
    overridden = sorted(p.stem for p in (ctx.settings.home / "config").glob("*.env"))
    retraining = retrain_alerts(ctx) if monitored else []
    loops = ctx.retrain_loops()
    drift = ctx.drift_status()
    if champion is not None and drift.get("model_version") != str(champion.version):
        # The monitor's last check compared the window with another model's reference (the
        # champion changed since): one against the champion's decides.
        drift = ctx.check_drift_now()
    auc = live_auc(drift)
    untrained = untrained_transforms(ctx, champion) if champion is not None else ""
    return [
        Condition.of(
            "every service is healthy",
            not down,
            f"{len(rows)} services answer their health checks",
            f"not healthy: {', '.join(down)}",
        ),
        Condition.of(
            "a champion exists",
            champion is not None,
            f"{ctx.settings.model_name} v{champion.version if champion else ''} is champion",
            f"{ctx.settings.model_name} has no champion: `mlops-lab train`",
        ),
        Condition.of(
            "serving answers with the champion",
            champion is not None and served == str(champion.version),
            f"/predict answers with v{served}",
            f"/predict answers with {(served and 'v' + served) or 'nothing'}, not the champion",
        ),
        Condition.of(
            "the champion declares no serving transform it was not trained with",
            not untrained,
            "serving applies nothing before the champion's own pipeline",
            f"v{champion.version if champion else ''} declares {untrained} on top of its own "
            "pipeline",
        ),
        Condition.of(
            "no rollout is in progress",
            running is None,
            "no candidate beside the champion",
            f"v{running.version if running else ''} is being rolled out "
            f"({running.plan.describe() if running else ''}): `mlops-lab rollout abort`",
        ),
        Condition.of(
            "Prometheus scrapes every target",
            not monitored or (bool(targets) and not not_up),
            f"{len(targets)} targets up" if monitored else "no Prometheus on this cluster",
            f"targets down: {', '.join(not_up) or 'no targets at all'}",
        ),
        Condition.of(
            "no alert that starts a retrain is pending or firing",
            not retraining,
            "no retrain alert" if monitored else "no Prometheus on this cluster",
            "the next lab's traffic would meet a retrain this one's alerts start: "
            + ", ".join(f"{a.get('alertname')} ({a.get('alertstate')})" for a in retraining),
        ),
        Condition.of(
            "no automation starts a retrain each time one runs",
            not loops,
            "no enabled Prefect automation reacts to a retrain by starting another",
            "each retrain would start the next: "
            + ", ".join(f"Prefect automation {a.name!r}" for a in loops),
        ),
        Condition.of(
            "the drift monitor's window does not drift",
            not drifted(drift),
            f"latest drift check: {drift.get('status')}",
            "the latest drift check still finds drift, so its alert would start a retrain in "
            f"the next lab: {', '.join(drifting_features(drift)) or 'dataset drift'}",
        ),
        Condition.of(
            "live performance is not under the floor",
            not underperforming(ctx, drift),
            f"live ROC AUC {auc:.3f}" if auc is not None else "too few outcomes to measure yet",
            f"live ROC AUC {auc or 0:.3f} is under the floor {ctx.settings.gate_min_auc}, so "
            "its alert would start a retrain in the next lab",
        ),
        Condition.of(
            "no service configuration overrides",
            not overridden,
            "every service runs on the platform's settings",
            f"overrides in {ctx.settings.home / 'config'}: {', '.join(overridden)}",
        ),
    ]
