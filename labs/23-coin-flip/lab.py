"""Lab 23: the front end's outcomes feed reports each outcome for another application's prediction,
so live ROC AUC falls to a coin's while the inputs and serving are healthy; overnight, a retrain
on those outcomes was promoted by hand. The variant says how the feed joins the two.

The check judges outcomes against the front end's outcomes ledger (the lender's record of what
became of each application): the newest outcomes in the prediction log are on their own
predictions; the champion, whichever it is, learned from no label the ledger contradicts (its
lineage tags say which logged rows it trained on, and the ledger what each held then); the
champion ranks the recorded outcomes; the incident's rows are kept.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from mlops_lab.front_end import outcomes as ledger
from mlops_lab.lab_engine import golden
from mlops_lab.lab_engine.kit import Condition, LabContext
from mlops_lab.lab_engine.progress import LabProgress
from pipelines.lineage import (
    TAG_REFERENCE_OF,
    TAG_TRAFFIC_ROWS,
    TAG_TRAFFIC_SINCE,
    TAG_TRAFFIC_UNTIL,
)

# How the outcomes feed joins an outcome to a prediction, and what that did.
VARIANTS = (
    {
        "join": "previous_request",
        "bug": "an index off by one",
        "effect": "each outcome was reported for the application answered just before its own",
    },
    {
        "join": "reversed_batch",
        "bug": "a batch matched in reverse order",
        "effect": "the outcomes reported together each second were matched to their applications "
        "in reverse order",
    },
    {
        "join": "latest_request",
        "bug": "a join on time instead of on the request id",
        "effect": "each outcome was reported for the newest application answered when it became "
        "known",
    },
)
RIGHT_JOIN = "request_id"
FEEDBACK_SHARE, FEEDBACK_DELAY_S = 0.9, 1.0
# Labelled answers the overnight retrain learned from (a quarter is its held-out set).
OVERNIGHT_ROWS = 240
# The newest outcomes judged, once the feed has had time to report them (a busy serving takes
# seconds to store them); and how many must be on their own prediction (a batch lost to a serving
# restart is not a wrong join).
RECENT_OUTCOMES, SETTLED_S, AGREEMENT = 100, 10.0, 0.98


def start(ctx: LabContext, variant: dict) -> dict:
    from pipelines import registry

    before = ctx.require_champion()
    began = time.time()
    # Nothing the alert starts may land while the night is staged; it may once the page is out.
    with golden.retrains_paused(ctx, "lab 23 start"):
        ctx.set_front_end(
            outcome_join=variant["join"],
            feedback_share=FEEDBACK_SHARE,
            feedback_delay_s=FEEDBACK_DELAY_S,
        )
        ctx.start_front_end()
        ctx.wait_until(
            lambda: len(ctx.logged(began, labelled=True)) >= OVERNIGHT_ROWS,
            300,
            f"{OVERNIGHT_ROWS} outcomes of the night's applications",
        )
        overnight = _retrain_on_recent_outcomes(ctx, len(ctx.logged(began, labelled=True)))
        if not overnight.promoted:
            registry.promote(ctx.mlflow, ctx.settings, overnight.version, by="model promote")
        golden.wait_until_served(ctx, overnight.version)
    tags = ctx.mlflow.get_model_version(ctx.settings.model_name, overnight.version).tags
    ctx.say(
        "[bold]Lab 23.[/] Alert: ModelPerformanceDegraded. The night's on-call hands over: "
        '"live AUC fell to about 0.5 and every drift panel is green. I retrained on recent '
        "outcomes only, the gate refused it, and since the old model scored no better on them I "
        'promoted it by hand. Still 0.5."'
    )
    return {
        "champion": str(before.version),
        "overnight": str(overnight.version),
        "window": {
            "since": tags[TAG_TRAFFIC_SINCE],
            "until": tags[TAG_TRAFFIC_UNTIL],
            "rows": int(tags[TAG_TRAFFIC_ROWS]),
        },
    }


def _retrain_on_recent_outcomes(ctx: LabContext, rows: int):
    """`mlops-lab retrain --recent-only --traffic-rows ROWS`, in this process: its log goes to
    Prefect (the run's page shows the gate's refusal), not to `lab start`'s output."""
    from mlops_lab.runtime.current import prediction_log_in_reach
    from pipelines.flows import retrain

    quiet = io.StringIO()
    with (
        prediction_log_in_reach(ctx.settings, ctx.runtime),
        contextlib.redirect_stdout(quiet),
        contextlib.redirect_stderr(quiet),
        _run_logs_to_prefect_only(),
    ):
        return retrain(reason="manual", traffic_rows=rows, recent_only=True)


@contextlib.contextmanager
def _run_logs_to_prefect_only() -> Iterator[None]:
    """Prefect's run loggers send to its API and, through the root logger, to the console (bound
    to the terminal when Prefect was imported, so a redirect does not hold it back)."""
    loggers = [logging.getLogger(name) for name in ("prefect.flow_runs", "prefect.task_runs")]
    before = [logger.propagate for logger in loggers]
    for logger in loggers:
        logger.propagate = False
    try:
        yield
    finally:
        for logger, propagate in zip(loggers, before, strict=True):
            logger.propagate = propagate


def await_evidence(ctx: LabContext, state: dict) -> None:
    floor = ctx.settings.gate_min_auc
    ctx.wait_until(
        lambda: (golden.live_auc(ctx.check_drift_now()) or 1.0) < floor,
        240,
        "the drift monitor to measure live ROC AUC under the floor",
        every_s=3.0,
    )


# ---- what the ledger says -----------------------------------------------------------------------


@dataclass
class Book:
    """The outcomes ledger since the lab began: each application's recorded outcome, and what the
    feed reported for each prediction (when, which outcome), oldest first."""

    entries: list[ledger.Entry]
    truth: dict[str, int] = field(default_factory=dict)
    reported: dict[str, list[tuple[float, int]]] = field(default_factory=dict)

    @classmethod
    def read(cls, ctx: LabContext, since: float) -> Book:
        book = cls(list(ledger.read(ledger.ledger_path(ctx.settings), since - 5.0)))
        for entry in book.entries:
            book.truth[entry.request_id] = entry.outcome
            if entry.reported_for is not None:
                book.reported.setdefault(entry.reported_for, []).append(
                    (entry.known_at, entry.outcome)
                )
        return book

    def held_when(self, request_id: str, label, labelled_s: float, at: float) -> int | None:
        """The label a prediction held at time ``at``: its label now if it was set by then, else
        the last outcome the feed reported for it before then. None when it had none then, and
        when it has none now: a wrong label taken off gets the benefit of the doubt."""
        if _missing(label):
            return None
        if labelled_s <= at:
            return int(label)
        earlier = [
            outcome for known_at, outcome in self.reported.get(request_id, []) if known_at <= at
        ]
        return earlier[-1] if earlier else None

    def wrong_when(self, request_id: str, label, labelled_s: float, at: float) -> bool:
        """Whether a prediction held, at time ``at``, a label the ledger contradicts: another
        outcome than its own, or any outcome the feed reported for it when the ledger has none
        of its own."""
        held = self.held_when(request_id, label, labelled_s, at)
        if held is None:
            return False
        truth = self.truth.get(request_id)
        return request_id in self.reported if truth is None else held != truth


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _epoch(value) -> float:
    """A logged time (a pandas Timestamp, a naive UTC datetime from SQLite, or None) in seconds."""
    import pandas as pd

    if value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value):
        return math.inf
    stamp = pd.Timestamp(value)
    return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp).timestamp()


def logged_rows(ctx: LabContext, since: float):
    """The answers logged since the lab began (the prediction log's columns, no features)."""
    frame = ctx.logged(since)
    if frame.empty:
        return frame
    columns = ["request_id", "created_at", "label", "labelled_at", "probability", "model_version"]
    rows = frame[columns].copy()
    rows["labelled_s"] = [_epoch(v) for v in rows["labelled_at"]]
    return rows


def recent_agreement(book: Book, rows, now: float) -> tuple[int, int]:
    """Of the newest outcomes in the ledger (known at least SETTLED_S ago), how many are on their
    own prediction in the log, and how many were judged."""
    settled = [e for e in book.entries if e.known_at <= now - SETTLED_S][-RECENT_OUTCOMES:]
    labels = dict(zip(rows["request_id"], rows["label"], strict=True)) if len(rows) else {}
    right = sum(
        1
        for e in settled
        if not _missing(labels.get(e.request_id)) and int(labels[e.request_id]) == e.outcome
    )
    return right, len(settled)


def learned_wrong(ctx: LabContext, version, book: Book, rows) -> list[tuple[str, int]]:
    """The versions in ``version``'s line (itself, then the version whose reference sample each
    retrain started from) that learned labels the ledger contradicts, with how many."""
    import pandas as pd

    found, seen = [], set()
    while version is not None and str(version.version) not in seen:
        seen.add(str(version.version))
        tags = version.tags or {}
        since, until = tags.get(TAG_TRAFFIC_SINCE), tags.get(TAG_TRAFFIC_UNTIL)
        if since and until and len(rows):
            trained_at = version.creation_timestamp / 1000
            inside = rows[
                (rows["created_at"] >= pd.Timestamp(since))
                & (rows["created_at"] <= pd.Timestamp(until))
            ]
            wrong = sum(
                book.wrong_when(rid, label, labelled_s, trained_at)
                for rid, label, labelled_s in zip(
                    inside["request_id"], inside["label"], inside["labelled_s"], strict=True
                )
            )
            if wrong:
                found.append((str(version.version), wrong))
        parent = tags.get(TAG_REFERENCE_OF)
        version = _version(ctx, parent) if parent else None
    return found


def _version(ctx: LabContext, number: str):
    from mlflow.exceptions import MlflowException

    try:
        return ctx.mlflow.get_model_version(ctx.settings.model_name, number)
    except MlflowException:
        return None  # deleted: its line ends here


def recorded_auc(ctx: LabContext, champion, book: Book, rows, since: float):
    """ROC AUC of the champion's answers since it became champion (and since the lab began)
    against the outcomes the ledger records for them, and on how many."""
    import pandas as pd

    from monitoring.performance import measure

    promoted = max(ctx.promoted_at(champion) or since, since)
    mine = rows[
        (rows["model_version"].astype(str) == str(champion.version))
        & (rows["created_at"] >= pd.Timestamp(promoted, unit="s", tz="UTC"))
    ]
    truth = [book.truth.get(rid) for rid in mine["request_id"]]
    scored = mine.assign(label=truth, prediction=(mine["probability"] >= 0.5).astype(int))
    scored = scored[[t is not None for t in truth]]
    performance = measure(scored, ctx.settings.performance_min_labels)
    return performance.roc_auc, performance.labelled_rows


def check(ctx: LabContext, progress: LabProgress) -> list[Condition]:
    import pandas as pd

    state, since = progress.state, progress.require_started_at()
    book = Book.read(ctx, since)
    rows = logged_rows(ctx, since)
    window = state["window"]
    kept = (
        int(
            (
                (rows["created_at"] >= pd.Timestamp(window["since"]))
                & (rows["created_at"] <= pd.Timestamp(window["until"]))
            ).sum()
        )
        if len(rows)
        else 0
    )
    right, judged = recent_agreement(book, rows, time.time())
    champion = ctx.champion()
    current = str(champion.version) if champion else None
    wrong = learned_wrong(ctx, champion, book, rows) if champion is not None else []
    auc, scored = (
        recorded_auc(ctx, champion, book, rows, since) if champion is not None else (None, 0)
    )
    floor, needed = ctx.settings.gate_min_auc, ctx.settings.performance_min_labels
    served = golden.served_version(ctx) if champion is not None else None
    return [
        Condition.of(
            "the incident's predictions are still in the prediction log",
            kept >= window["rows"],
            f"{kept} answers logged while the night's model was trained are kept as evidence",
            f"only {kept} of the answers logged while the night's model was trained remain "
            f"(it learned from {window['rows']}): the evidence is gone",
        ),
        Condition.of(
            "recent outcomes in the prediction log agree with the lender's ledger",
            judged >= RECENT_OUTCOMES and right >= AGREEMENT * judged,
            f"{right} of the newest {judged} outcomes in the ledger are on their own prediction",
            f"{right} of the newest {judged} outcomes in the ledger are on their own prediction "
            f"in the prediction log (at least {math.ceil(AGREEMENT * RECENT_OUTCOMES)} of "
            f"{RECENT_OUTCOMES} are needed)",
        ),
        Condition.of(
            "the champion learned no outcome the ledger contradicts",
            champion is not None and not wrong,
            f"v{current}'s line learned no label the ledger contradicts",
            "there is no champion"
            if champion is None
            else f"v{current}'s line learned labels the ledger contradicts: "
            + ", ".join(f"v{v} {n} rows" for v, n in wrong),
        ),
        Condition.of(
            "the champion ranks the outcomes the ledger records",
            auc is not None and auc >= floor,
            f"v{current}: ROC AUC {auc or 0:.3f} on the recorded outcomes of {scored} of its "
            "answers",
            "there is no champion"
            if champion is None
            else f"v{current}: ROC AUC {auc:.3f} on the recorded outcomes of {scored} of its "
            f"answers, under the floor {floor}"
            if auc is not None
            else f"v{current} has {scored} answers with a recorded outcome since it became "
            f"champion; {needed} are needed",
        ),
        Condition.of(
            "serving answers with the champion",
            current is not None and served == current,
            f"/predict answers with v{served}",
            f"/predict answers with {('v' + served) if served else 'nothing'}, not v{current}",
        ),
    ]


# ---- hints, fix ---------------------------------------------------------------------------------


def _offline_auc(ctx: LabContext, version: str, labelled) -> float | None:
    """A version's ROC AUC on logged answers' labels, scored offline."""
    from monitoring.performance import measure
    from platform_core import contract

    try:
        found = ctx.mlflow.get_model_version(ctx.settings.model_name, version)
        types = contract.load_feature_types(ctx.mlflow, found)
        model = contract.load_sklearn_model(contract.model_uri(ctx.settings, version=version))
    except Exception:  # a deleted version, a missing artifact: no figure, not a failed hint
        return None
    features = contract.prepare_features(labelled.reindex(columns=types.names), types)
    scored = labelled.assign(
        prediction=model.predict(features), probability=model.predict_proba(features)[:, 1]
    )
    return measure(scored, ctx.settings.performance_min_labels).roc_auc


def hints(ctx: LabContext, progress: LabProgress) -> list[str]:
    state, since = progress.state, progress.require_started_at()
    status = ctx.drift_status()
    champion = ctx.champion()
    current = str(champion.version) if champion else "none"
    labelled = ctx.logged(since, labelled=True)
    old = _offline_auc(ctx, state["champion"], labelled) if len(labelled) else None
    now = _offline_auc(ctx, current, labelled) if len(labelled) and champion else None
    book = Book.read(ctx, since)
    right, judged = recent_agreement(book, logged_rows(ctx, since), time.time())

    def figure(value: float | None) -> str:
        return "not measurable yet" if value is None else f"{value:.3f}"

    return [
        f"Live ROC AUC {figure(golden.live_auc(status))}, input drift "
        f"{'found' if golden.drifted(status) else 'none'}, serving healthy. Before blaming a "
        f"model: how did v{current} become champion, and what did it learn from "
        "(`mlops-lab model list --json`, its tags)? Would the champion from before do better?",
        f"Scored offline on the {len(labelled)} labelled answers since the incident began, "
        f"v{state['champion']} (champion before the night) has ROC AUC {figure(old)} and "
        f"v{current} {figure(now)}. A model trained long before the incident is as much a coin "
        "as the one trained during it: what are they being scored against, and where does it "
        "come from?",
        "The outcomes come from the loan front end, the lender: `mlops-lab logs front-end`, its "
        f"configuration {ctx.front_end_path} and its outcomes ledger "
        f"{ledger.ledger_path(ctx.settings)} (what became of each application, and which "
        f"prediction it was reported for). Of the newest {judged} outcomes in the ledger, "
        f"{judged - right} are not on their own prediction in the prediction log.",
        f"Set `outcome_join: {RIGHT_JOIN}` in {ctx.front_end_path}. Then no champion may have "
        "learned what was reported meanwhile: pause the automatic retrains while wrong "
        "outcomes are in the monitor's window (an Alertmanager silence on action=retrain), "
        f"put back a version trained before the incident (`mlops-lab model promote "
        f"{state['champion']}`), and retrain later, if you want one, only on outcomes reported "
        "since the fix (`mlops-lab retrain --traffic-rows N`).",
    ]


def solve(ctx: LabContext, progress: LabProgress) -> None:
    before = progress.state["champion"]
    # No retrain may start while wrong outcomes are still in the monitor's window.
    with golden.retrains_paused(ctx, "lab 23 fix"):
        ctx.set_front_end(outcome_join=RIGHT_JOIN)
        golden.settle_retrains(ctx)
        _champion_again(ctx, before)
        if ctx.runtime.monitoring_installed():
            golden.await_retrain_alerts_resolved(ctx)
        # A retrain that started before the pause may have promoted meanwhile.
        golden.settle_retrains(ctx)
        _champion_again(ctx, before)


def _champion_again(ctx: LabContext, version: str) -> None:
    from pipelines import registry

    if str(ctx.require_champion().version) != version:
        registry.promote(ctx.mlflow, ctx.settings, version, by="lab 23 reference fix")
    golden.wait_until_served(ctx, version)
