"""Lab 13: the champion's version declares in the registry that serving applies a transform to
one feature before the model, whose own pipeline scales the raw value (log1p to annual_income in
the first variant): the model sees a different applicant, one it declines."""

from __future__ import annotations

import time

import pandas as pd

from mlops_lab.lab_engine.golden import untrained_transforms
from mlops_lab.lab_engine.kit import CAUSE, Condition, LabContext, cause_reported, variant_of
from mlops_lab.lab_engine.progress import LabProgress
from platform_core.contract import TAG_SERVING_TRANSFORMS

# What the version declares serving applies: each turns a typical applicant into one the model
# declines (a tiny income, a very low credit score, a debt a hundred times the income).
VARIANTS = (
    {
        "feature": "annual_income",
        "applied": "log1p",
        "unit": "dollars",
        "example": "an income of 62,000 reached the model as 11",
    },
    {
        "feature": "credit_score",
        "applied": "x0.01",
        "unit": "points",
        "example": "a credit score of 690 reached the model as 6.9",
    },
    {
        "feature": "debt_to_income",
        "applied": "x100",
        "unit": "a ratio",
        "example": "a debt-to-income ratio of 0.3 reached the model as 30",
    },
)


TOLERANCE = 1e-9
MIN_ROWS = 30
# "Now" for the fix: the answers of the last few alias polls (30 s with the default 5 s poll).
# The check cannot know when a fix happened: a registry change reaches each serving replica at
# its own next poll, and a restart's time is reported in whole seconds (the old process's last
# answers can share that second). Answers from before a fix leave this window within it.
RECENT_POLLS = 6
MIN_RECENT_S = 10.0


def recent_s(ctx: LabContext) -> float:
    return max(RECENT_POLLS * ctx.settings.alias_poll_interval_s, MIN_RECENT_S)


def skewed(variant: dict) -> str:
    """The declaration the incident put on the champion, as serving reads it."""
    return f"{variant['feature']}:{variant['applied']}"


def start(ctx: LabContext, variant: dict) -> dict:
    # On the version itself: every replica, a restart and a rollback to it all read it back.
    version = str(ctx.require_champion().version)
    ctx.mlflow.set_model_version_tag(
        ctx.settings.model_name, version, TAG_SERVING_TRANSFORMS, skewed(variant)
    )
    ctx.say(
        '[bold]Lab 13.[/] Sales: "since this morning the model declines almost everyone. '
        'Monitoring is all green: no errors, no drift."'
    )
    return {"champion": version}


def replay(ctx: LabContext, since: float, version: str):
    """The logged answers of ``version`` since a time, each with the offline model's answer for
    the same logged features: a DataFrame with ``probability`` and ``offline``."""
    return _with_offline(ctx, ctx.logged(since, version=version), version)


def _with_offline(ctx: LabContext, logged, version: str):
    from platform_core import contract

    if logged.empty:
        return logged
    offline = _offline(ctx, version)
    if offline is None:
        # Deleted from the registry: nothing to replay its answers with (the check says so
        # where it matters, for the incident's version).
        return logged.iloc[0:0]
    types, model = offline
    features = contract.prepare_features(logged.reindex(columns=types.names), types)
    logged["offline"] = model.predict_proba(features)[:, 1]
    return logged


# A registered version's model never changes: a check polled every few seconds loads it once.
_OFFLINE: dict[tuple[str, str, str], tuple] = {}


def _offline(ctx: LabContext, version: str) -> tuple | None:
    """A version's feature types and its model, as the registry holds them (None once the
    version is deleted)."""
    from platform_core import contract

    if version not in {str(v.version) for v in ctx.versions()}:
        return None
    model_version = ctx.mlflow.get_model_version(ctx.settings.model_name, version)
    key = (ctx.settings.mlflow_url, model_version.run_id or "", model_version.source or "")
    if key not in _OFFLINE:
        _OFFLINE[key] = (
            contract.load_feature_types(ctx.mlflow, model_version),
            contract.load_sklearn_model(contract.model_uri(ctx.settings, version=version)),
        )
    return _OFFLINE[key]


def replay_recent(ctx: LabContext, since: float):
    """Every version's logged answers since a time, each replayed with its own registered model:
    a new champion (a retrain, a promotion) is judged on its own answers."""
    logged = ctx.logged(since)
    if logged.empty:
        return logged
    versions = logged["model_version"].astype(str)
    frames = [
        _with_offline(ctx, logged[versions == version].copy(), version)
        for version in sorted(set(logged["model_version"].dropna().astype(str)))
    ]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _gap(frame) -> float:
    return float((frame["probability"] - frame["offline"]).abs().max())


def check(ctx: LabContext, progress: LabProgress) -> list[Condition]:
    since = progress.require_started_at()
    version = progress.state["champion"]
    replayed = replay(ctx, since, version)
    skewed = (
        replayed[(replayed["probability"] - replayed["offline"]).abs() > TOLERANCE]
        if len(replayed)
        else replayed
    )
    recent_window = recent_s(ctx)
    window_start = time.time() - recent_window
    recent = replay_recent(ctx, window_start)
    ready, why = ctx.serving_ready()
    untrained = _untrained(ctx, version)
    return [
        Condition.of(
            "the incident's skewed answers are still logged",
            len(skewed) >= MIN_ROWS,
            f"{len(skewed)} logged answers differ from the offline model: the proof of the skew",
            f"only {len(skewed)} logged answers from the incident differ from the offline model: "
            "the evidence is gone",
        ),
        Condition.of("serving is ready", ready, "/readyz answers 200", why),
        Condition.of(
            "served answers equal the offline model's",
            len(recent) >= MIN_ROWS and _gap(recent) <= TOLERANCE,
            f"{len(recent)} answers of the last {recent_window:.0f}s match the offline model "
            f"(largest gap {_gap(recent):.1e})"
            if len(recent)
            else "",
            f"{len(recent)} answers in the last {recent_window:.0f}s (at least {MIN_ROWS} needed)"
            + (
                f"; largest gap {_gap(recent):.3f} (answers from before a fix leave this window "
                f"within {recent_window:.0f}s)"
                if len(recent)
                else ""
            ),
        ),
        # Another champion hides the symptom; the version that was wrong stays wrong, and a
        # rollback to it (the usual first move of the next incident) brings this one back.
        Condition.of(
            "the champion the incident began with would answer as trained",
            untrained == "",
            f"v{version} declares nothing serving must apply on top of its own pipeline",
            f"v{version} still declares {untrained!r} ({TAG_SERVING_TRANSFORMS}): whichever "
            "version is champion now, serving it again would answer wrongly again"
            if untrained is not None
            else f"v{version} is gone from the registry: the incident's model is evidence too",
        ),
        cause_reported(
            "13",
            progress.answers,
            variant_of(VARIANTS, progress.state)["applied"],
            TAG_SERVING_TRANSFORMS,
        ),
    ]


def _untrained(ctx: LabContext, version: str) -> str | None:
    """What ``version`` declares serving applies beyond what it was trained with ("" when
    nothing); None when the version is gone."""
    from mlflow.exceptions import MlflowException

    try:
        found = ctx.mlflow.get_model_version(ctx.settings.model_name, version)
    except MlflowException:
        return None
    return untrained_transforms(ctx, found)


def hints(ctx: LabContext, progress: LabProgress) -> list[str]:
    replayed = replay(ctx, progress.require_started_at(), progress.state["champion"])
    gap = f"{_gap(replayed):.3f}" if len(replayed) else "unknown yet"
    return [
        "Same version, valid inputs, no drift, yet different answers. Compare the prediction "
        "distribution (serving_prediction_probability_bucket) before and after this morning.",
        "Is the model that answers the model that was trained? Take logged requests and score "
        "their features offline with the registered champion, then compare the probabilities. "
        f"Largest difference since the incident began: {gap}.",
        "If the same features give different answers, something sits between the request and "
        "the model inside serving, and a restart does not clear it. `mlops-lab logs serving`: "
        "what does serving say it applies when it loads this version? Where does it read that "
        "from, if not from its own configuration?",
        f"The version itself declares it: the tags of {ctx.settings.model_name} "
        f"v{progress.state['champion']} on its registry page in MLflow "
        f"({ctx.settings.mlflow_url}). The platform's models carry their preprocessing in the "
        f"pipeline. Remove the {TAG_SERVING_TRANSFORMS} tag from that version: `.venv/bin/python "
        f"-c \"from mlflow import MlflowClient; MlflowClient('{ctx.settings.mlflow_url}')"
        f".delete_model_version_tag('{ctx.settings.model_name}', "
        f"'{progress.state['champion']}', '{TAG_SERVING_TRANSFORMS}')\"`. Serving follows within "
        "a poll, no restart. Replay again.",
    ]


def await_evidence(ctx: LabContext, state: dict) -> None:
    since, version = state["started_at"], state["champion"]

    def skewed() -> int:
        replayed = replay(ctx, since, version)
        if not len(replayed):
            return 0
        return int(((replayed["probability"] - replayed["offline"]).abs() > TOLERANCE).sum())

    ctx.wait_until(lambda: skewed() >= MIN_ROWS, 120, "the first answers of the changed serving")


def solve(ctx: LabContext, progress: LabProgress) -> None:
    variant = variant_of(VARIANTS, progress.state)
    version = progress.state["champion"]
    ctx.mlflow.delete_model_version_tag(ctx.settings.model_name, version, TAG_SERVING_TRANSFORMS)
    progress.answers[CAUSE] = (
        f"v{version} declares {TAG_SERVING_TRANSFORMS}={skewed(variant)}: serving applies "
        f"{variant['applied']} to {variant['feature']} before a model whose pipeline takes it as "
        f"{variant['unit']} and scales it itself"
    )
