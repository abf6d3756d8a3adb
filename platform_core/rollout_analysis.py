"""What live evidence says about a rollout's candidate, beside the champion, since it started.

The figures come from two places: the prediction log (what each version scored, the outcomes
that came back, and in shadow the two versions' answers to the same records) and serving's
metrics in Prometheus (errors and latency by version). :class:`Analysis` is what the Rollout
dashboard, ``mlops-lab rollout status`` and the automatic decision all read; a figure the
evidence cannot give yet (too few outcomes, Prometheus unreachable) is None, never a guess.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from platform_core import contract
from platform_core import rollout as state
from platform_core.errors import PlatformError
from platform_core.prediction_log import (
    ROLE_CANARY,
    ROLE_CHAMPION,
    ROLE_SHADOW,
    SHADOW_SUFFIX,
    predictions,
)
from platform_core.rollout import SHADOW, Rollout
from platform_core.settings import Settings

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient
    from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VersionFigures:
    """One version's live figures since the rollout started."""

    version: str
    # "champion"; the candidate's is "canary" or "shadow" (the prediction log's role).
    role: str
    # Records it scored, and how many of them have an outcome (a label through /feedback).
    scored: int
    labelled: int
    # Live ROC AUC on the labelled records and its standard error; None with too few outcomes
    # or a single class among them.
    auc: float | None
    auc_stderr: float | None
    # From Prometheus over the rollout so far; None when Prometheus has no figure. In shadow the
    # candidate's errors are its failed shadow scorings and its latency its scoring time.
    requests: float | None
    error_rate: float | None
    p99_s: float | None


@dataclass(frozen=True)
class Analysis:
    """The candidate against the champion, for the rollout in progress."""

    rollout: Rollout
    # Seconds since the rollout started (from its tags).
    age_s: float
    champion: VersionFigures
    candidate: VersionFigures
    # Shadow only (both versions scored the same records): the share of records on which they
    # predict the same class, and the Kolmogorov-Smirnov distance between their probabilities.
    agreement: float | None
    score_distance: float | None
    # candidate AUC - champion AUC, and the standard error of that difference; None until both
    # AUCs are known.
    auc_difference: float | None
    auc_difference_stderr: float | None

    def to_dict(self) -> dict:
        document = asdict(self)
        document["rollout"] = self.rollout.to_dict()
        return document


# The Prometheus range covers the rollout so far, but never less than two scrapes (a rate needs
# two samples) nor more than a day (a week-long canary would have Prometheus read every sample
# of the week on each status).
_LONGEST_RANGE_S = 24 * 3600
# Probabilities closer than this are one value to the score distance.
_PROBABILITY_DECIMALS = 9


def analyse(
    settings: Settings, client: MlflowClient, engine: Engine, prometheus: bool = True
) -> Analysis | None:
    """The rollout in progress against the champion, or None when none is.

    Counts cover every row logged since the rollout started; AUCs, agreement and distance the
    newest ``analysis_window_rows`` of them, so a check costs the same on day one and day thirty.
    ``prometheus=False`` leaves the error and latency figures None: the drift monitor exports
    the rest, and Prometheus computes those itself (recording rules in monitoring/rules.py).
    """
    rollout = state.current(client, settings)
    if rollout is None:
        return None
    champion = contract.champion(client, settings)
    champion_version = str(champion.version) if champion is not None else ""
    started = start_time(rollout)
    age_s = max(0.0, (dt.datetime.now(dt.UTC) - started).total_seconds())
    candidate_role = ROLE_SHADOW if rollout.plan.mode == SHADOW else ROLE_CANARY
    keys = {
        "champion": (champion_version, ROLE_CHAMPION),
        "candidate": (rollout.version, candidate_role),
    }
    counts = _counts(engine, settings.model_name, started)
    minimum = settings.analysis_min_records
    window = settings.analysis_window_rows
    agreement = distance = None
    if candidate_role == ROLE_SHADOW:
        pairs = shadow_pairs(engine, settings.model_name, started, window)
        agreement, distance = _agreement_and_distance(pairs, minimum)
        champion_auc, candidate_auc, difference, difference_se = _paired_aucs(pairs, minimum)
    else:
        name = settings.model_name
        champion_auc = _auc(engine, name, started, *keys["champion"], window, minimum)
        candidate_auc = _auc(engine, name, started, *keys["candidate"], window, minimum)
        difference = difference_se = None
        if champion_auc[0] is not None and candidate_auc[0] is not None:
            # Different records (each request went to one version): independent estimates.
            difference = candidate_auc[0] - champion_auc[0]
            difference_se = math.hypot(champion_auc[1] or 0.0, candidate_auc[1] or 0.0)
    live = _live_figures(settings, rollout, champion_version, age_s) if prometheus else {}
    figures = {}
    for which, (version, role) in keys.items():
        scored, labelled_count = counts.get((version, role), (0, 0))
        auc, auc_se = champion_auc if which == "champion" else candidate_auc
        requests, error_rate, p99_s = live.get(which, (None, None, None))
        figures[which] = VersionFigures(
            version=version,
            role=role,
            scored=scored,
            labelled=labelled_count,
            auc=auc,
            auc_stderr=auc_se,
            requests=requests,
            error_rate=error_rate,
            p99_s=p99_s,
        )
    return Analysis(
        rollout=rollout,
        age_s=age_s,
        champion=figures["champion"],
        candidate=figures["candidate"],
        agreement=agreement,
        score_distance=distance,
        auc_difference=difference,
        auc_difference_stderr=difference_se,
    )


def start_time(rollout: Rollout) -> dt.datetime:
    """When the rollout started; tags written by hand may lack it: then the epoch (all rows)."""
    return tag_time(rollout.started_at) or dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def tag_time(text: str) -> dt.datetime | None:
    """A time from a rollout tag (ISO 8601, UTC when it names no zone); None if unreadable."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _counts(
    engine: Engine, model_name: str, since: dt.datetime
) -> dict[tuple[str, str], tuple[int, int]]:
    """(version, role) -> (rows scored, rows labelled) since ``since``: one grouped query."""
    p = predictions.c
    query = (
        sa.select(p.model_version, p.role, sa.func.count(), sa.func.count(p.label))
        .where(p.model_name == model_name, p.created_at >= since)
        .group_by(p.model_version, p.role)
    )
    with engine.connect() as conn:
        return {(row[0], row[1]): (int(row[2]), int(row[3])) for row in conn.execute(query)}


def _auc(
    engine: Engine,
    model_name: str,
    since: dt.datetime,
    version: str,
    role: str,
    window: int,
    minimum: int,
) -> tuple[float | None, float | None]:
    """Live ROC AUC and its standard error on the newest labelled rows of a version in a role."""
    p = predictions.c
    query = (
        sa.select(p.label, p.probability)
        .where(
            p.model_name == model_name,
            p.created_at >= since,
            p.model_version == version,
            p.role == role,
            p.label.is_not(None),
        )
        .order_by(p.id.desc())
        .limit(window)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    result = delong([int(r[0]) for r in rows], [[float(r[1]) for r in rows]], minimum)
    if result is None:
        return None, None
    (auc,), covariance = result
    return auc, math.sqrt(covariance[0][0])


def shadow_pairs(
    engine: Engine,
    model_name: str,
    since: dt.datetime,
    window: int,
    until: dt.datetime | None = None,
    with_features: bool = False,
) -> list[tuple]:
    """The newest shadow rows (logged by ``until``, when given) joined to their answers:
    (answer's class, answer's probability, shadow's class, shadow's probability, label), after
    the answer's features (their JSON text) with ``with_features``. The join strips the shadow
    suffix from the request id, so the answer side is found through the (request_id,
    record_index) index."""
    shadow = predictions.alias("shadow")
    answer = predictions.alias("answer")
    answer_id = sa.func.substr(
        shadow.c.request_id, 1, sa.func.length(shadow.c.request_id) - len(SHADOW_SUFFIX)
    )
    columns = [
        answer.c.prediction,
        answer.c.probability,
        shadow.c.prediction,
        shadow.c.probability,
        answer.c.label,
    ]
    query = (
        sa.select(*([answer.c.features] if with_features else []), *columns)
        .select_from(
            shadow.join(
                answer,
                sa.and_(
                    answer.c.request_id == answer_id,
                    answer.c.record_index == shadow.c.record_index,
                ),
            )
        )
        .where(
            shadow.c.model_name == model_name,
            shadow.c.role == ROLE_SHADOW,
            shadow.c.created_at >= since,
            *([shadow.c.created_at <= until] if until is not None else []),
        )
        .order_by(shadow.c.id.desc())
        .limit(window)
    )
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]


def _paired_aucs(
    pairs: Sequence[tuple], minimum: int
) -> tuple[
    tuple[float | None, float | None], tuple[float | None, float | None], float | None, float | None
]:
    """Champion's and candidate's (AUC, standard error) on the labelled records both scored, and
    the difference with its paired standard error; Nones below ``minimum`` or with one class."""
    labelled = [(label, p[1], p[3]) for p in pairs if (label := p[4]) is not None]
    found = delong(
        [label for label, _, _ in labelled],
        [[champ for _, champ, _ in labelled], [cand for _, _, cand in labelled]],
        minimum,
    )
    if found is None:
        return (None, None), (None, None), None, None
    (champion, candidate), cov = found
    variance = cov[0][0] + cov[1][1] - 2 * cov[0][1]
    return (
        (champion, math.sqrt(cov[0][0])),
        (candidate, math.sqrt(cov[1][1])),
        candidate - champion,
        math.sqrt(max(variance, 0.0)),
    )


def _agreement_and_distance(
    pairs: Sequence[tuple], minimum: int
) -> tuple[float | None, float | None]:
    """Share of records both versions put in the same class, and the Kolmogorov-Smirnov distance
    between their probabilities (0: the same distribution, 1: no overlap)."""
    if len(pairs) < minimum:
        return None, None
    from scipy.stats import ks_2samp

    agreement = sum(1 for p in pairs if p[0] == p[2]) / len(pairs)
    # Rounded: the same model scoring a record alone and in a batch can differ in the last bits,
    # and KS counts any difference in order (1/N per record) however small.
    champion = [round(p[1], _PROBABILITY_DECIMALS) for p in pairs]
    candidate = [round(p[3], _PROBABILITY_DECIMALS) for p in pairs]
    result = ks_2samp(champion, candidate)
    return agreement, float(result.statistic)  # pyright: ignore[reportAttributeAccessIssue]


def delong(
    labels: Sequence[int], scores: Sequence[Sequence[float]], minimum: int = 1
) -> tuple[list[float], list[list[float]]] | None:
    """ROC AUC of each score list against ``labels`` and the covariance of those AUCs (DeLong,
    DeLong & Clarke-Pearson 1988, with Sun & Xu's midrank computation).

    Scores of the same records give the paired covariance: the standard error of a difference
    of two AUCs on the same records is then much smaller than if they were independent. None
    below ``minimum`` labels or with a single class.
    """
    import numpy as np
    from scipy.stats import rankdata

    y = np.asarray(labels, dtype=int)
    if len(y) < minimum or len(set(y.tolist())) < 2:
        return None
    positives, negatives = y == 1, y == 0
    m, n = int(positives.sum()), int(negatives.sum())
    aucs, v01, v10 = [], [], []
    for values in scores:
        x = np.asarray(values, dtype=float)
        pos, neg = x[positives], x[negatives]
        combined = rankdata(np.concatenate([pos, neg]))
        rank_pos, rank_neg = combined[:m], combined[m:]
        aucs.append(float((rank_pos.sum() - m * (m + 1) / 2) / (m * n)))
        # Structural components: for each positive, the share of negatives it outranks; for each
        # negative, the share of positives that outrank it.
        v01.append((rank_pos - rankdata(pos)) / n)
        v10.append(1.0 - (rank_neg - rankdata(neg)) / m)
    k = len(aucs)
    s01 = np.atleast_2d(np.cov(np.vstack(v01))) if m > 1 else np.zeros((k, k))
    s10 = np.atleast_2d(np.cov(np.vstack(v10))) if n > 1 else np.zeros((k, k))
    covariance = s01 / m + s10 / n
    return aucs, covariance.tolist()


def _live_figures(
    settings: Settings, rollout: Rollout, champion_version: str, age_s: float
) -> dict[str, tuple[float | None, float | None, float | None]]:
    """From serving's metrics, over the rollout so far: requests, error ratio and p99 latency of
    the champion and the candidate. In shadow both latencies are model scoring time (the
    candidate answers no request, so like is compared with like); in a canary both are the time
    /predict took. Empty when Prometheus cannot answer: the figures stay None."""
    scrape = settings.scrape_interval_s
    range_s = min(max(age_s, 2 * scrape), _LONGEST_RANGE_S)
    window = f"{math.ceil(range_s)}s"
    shadow = rollout.plan.mode == SHADOW
    buckets = (
        "serving_model_scoring_seconds_bucket"
        if shadow
        else "serving_prediction_latency_seconds_bucket"
    )
    wanted = {
        "champion": (champion_version, ROLE_CHAMPION),
        "candidate": (rollout.version, ROLE_SHADOW if shadow else ROLE_CANARY),
    }
    from platform_core import promql

    def ask(expr: str) -> float | None:
        return _one(promql.query(settings, expr))

    figures: dict[str, tuple[float | None, float | None, float | None]] = {}
    try:
        for which, (version, role) in wanted.items():
            requests = f'serving_version_requests_total{{model_version="{version}", role="{role}"'
            total = ask(f"sum(increase({requests}}}[{window}]))")
            failed = ask(f'sum(increase({requests}, outcome="error"}}[{window}]))')
            latency = f'{buckets}{{model_version="{version}"}}[{window}]'
            p99 = ask(f"histogram_quantile(0.99, sum by (le) (increase({latency})))")
            ratio = (failed or 0.0) / total if total else None
            figures[which] = (total, ratio, p99)
    except PlatformError as error:
        log.warning("No error or latency figures for the rollout: %s", error)
        return {}
    return figures


def _one(series: list[dict]) -> float | None:
    """The value of a one-series answer; None for no series or NaN (no samples in the range)."""
    if not series:
        return None
    value = series[0]["value"]
    return None if math.isnan(value) else value
