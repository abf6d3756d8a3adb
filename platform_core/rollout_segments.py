"""The rollout's evidence split by one feature: a candidate can match the champion overall and
still be worse for one group of applicants (its average hides them).

For each segment (a value of a categorical feature, a quartile of a numeric one) each version's
records there: how many it scored and how many have an outcome, the share it predicted positive,
the share that really was, and its live ROC AUC with a standard error. In a canary each version
answered other requests, so their AUCs are independent estimates; in shadow both scored the same
records and the difference is paired (see :func:`platform_core.rollout_analysis.delong`).
Reads are bounded like the analysis's: the newest ``analysis_window_rows`` rows of each version.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

import sqlalchemy as sa

from platform_core import contract
from platform_core import rollout as state
from platform_core.errors import PlatformError
from platform_core.prediction_log import (
    ROLE_CANARY,
    ROLE_CHAMPION,
    ROLE_SHADOW,
    predictions,
)
from platform_core.rollout import SHADOW
from platform_core.rollout_analysis import delong, shadow_pairs, start_time, tag_time
from platform_core.settings import Settings

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient
    from sqlalchemy.engine import Engine

MISSING = "(missing)"
QUARTILES = 4


@dataclass(frozen=True)
class Side:
    """One version's records in one segment."""

    scored: int
    labelled: int
    # Share of its records it predicted positive (the class the model flags), and the share of
    # the labelled ones that really were; None without records or outcomes.
    predicted_rate: float | None
    outcome_rate: float | None
    # Share of the labelled records whose predicted class was wrong, and its standard error
    # (None below the minimum of outcomes). A version can rank a segment as well as another and
    # still decide wrongly for most of it (flag nearly all of it, say): AUC alone misses that.
    error_rate: float | None
    error_stderr: float | None
    auc: float | None
    auc_stderr: float | None


@dataclass(frozen=True)
class Segment:
    name: str
    champion: Side
    candidate: Side
    # candidate AUC - champion AUC and its standard error (paired in shadow); None until both
    # AUCs are known.
    auc_difference: float | None
    auc_difference_stderr: float | None

    @property
    def worse(self) -> bool:
        """The candidate is wrong more often than the champion here, or ranks worse (lower
        AUC), by more than two standard errors."""
        difference, stderr = self.auc_difference, self.auc_difference_stderr
        ranks_worse = difference is not None and stderr is not None and difference < -2 * stderr
        mine, theirs = self.champion, self.candidate
        if mine.error_rate is None or theirs.error_rate is None:
            return ranks_worse
        spread = math.hypot(mine.error_stderr or 0.0, theirs.error_stderr or 0.0)
        return ranks_worse or theirs.error_rate - mine.error_rate > 2 * spread


@dataclass(frozen=True)
class Segments:
    feature: str
    kind: str  # "categorical" or "numeric"
    champion_version: str
    candidate_version: str
    candidate_role: str
    segments: tuple[Segment, ...]
    # "" for the rollout in progress; how and when the last one ended, when none is.
    ended: str = ""

    def to_dict(self) -> dict:
        return asdict(self) | {"worse": [s.name for s in self.segments if s.worse]}


# A record: (features, predicted class, probability, label or None).
Row = tuple[dict, int, float, int | None]


def by_feature(
    settings: Settings, client: MlflowClient, engine: Engine, feature: str
) -> Segments | None:
    """The rollout in progress split by ``feature``; with none in progress, the last one that
    ended, over its own time (a canary aborted at once is still evidence); None if no rollout
    ever ran."""
    rollout, until, ended = state.current(client, settings), None, ""
    if rollout is None:
        last = state.last_ended(client, settings)
        if last is None:
            return None
        rollout = state.Rollout.of(client.get_model_version(settings.model_name, last.version))
        ended_at = tag_time(last.ended_at)
        # The tag is in whole seconds: answers of the second it ended in are the rollout's too.
        until = ended_at + dt.timedelta(seconds=1) if ended_at is not None else None
        ended = f"{last.outcome} at {last.ended_at}"
        champion_version = ""
    else:
        champion = contract.champion(client, settings)
        champion_version = str(champion.version) if champion is not None else ""
    since = start_time(rollout)
    window, minimum = settings.analysis_window_rows, settings.analysis_min_records
    name = settings.model_name
    if rollout.plan.mode == SHADOW:
        pairs = _shadow_pairs(engine, name, since, window, until)
        champion_rows = [(f, a, pa, y) for f, a, pa, _, _, y in pairs]
        candidate_rows = [(f, c, pc, y) for f, _, _, c, pc, y in pairs]
    else:
        champion_rows = _rows(engine, name, since, ROLE_CHAMPION, window, until, champion_version)
        candidate_rows = _rows(engine, name, since, ROLE_CANARY, window, until, rollout.version)
    found = split(
        feature,
        champion_rows,
        candidate_rows,
        paired=rollout.plan.mode == SHADOW,
        minimum=minimum,
        versions=(champion_version, rollout.version),
    )
    return replace(found, ended=ended)


def split(
    feature: str,
    champion_rows: Sequence[Row],
    candidate_rows: Sequence[Row],
    paired: bool,
    minimum: int,
    versions: tuple[str, str],
) -> Segments:
    """The two versions' records split by ``feature``. ``paired``: shadow rows, the candidate's
    i-th row scored the same record as the champion's i-th."""
    every = [*champion_rows, *candidate_rows]
    known = sorted({key for row in every for key in row[0]})
    if every and feature not in known:
        raise PlatformError(
            f"No feature {feature!r} in the logged records of this rollout.",
            hint=f"One of: {', '.join(known)}.",
        )
    kind, segment_of, rank = _segmenter([row[0].get(feature) for row in every])
    names = sorted({segment_of(row[0].get(feature)) for row in every}, key=rank)
    segments = []
    for segment in names:
        if paired:
            both = [
                (a, b)
                for a, b in zip(champion_rows, candidate_rows, strict=True)
                if segment_of(a[0].get(feature)) == segment
            ]
            segments.append(_paired(segment, [a for a, _ in both], [b for _, b in both], minimum))
        else:
            mine = [r for r in champion_rows if segment_of(r[0].get(feature)) == segment]
            theirs = [r for r in candidate_rows if segment_of(r[0].get(feature)) == segment]
            segments.append(_independent(segment, mine, theirs, minimum))
    return Segments(
        feature=feature,
        kind=kind,
        champion_version=versions[0],
        candidate_version=versions[1],
        candidate_role=ROLE_SHADOW if paired else ROLE_CANARY,
        segments=tuple(segments),
    )


def _rows(
    engine: Engine,
    model_name: str,
    since: dt.datetime,
    role: str,
    window: int,
    until: dt.datetime | None = None,
    version: str = "",
) -> list[Row]:
    """The newest rows in ``role`` between two times (of ``version`` when it is given)."""
    p = predictions.c
    where = [p.model_name == model_name, p.created_at >= since, p.role == role]
    if until is not None:
        where.append(p.created_at <= until)
    if version:
        where.append(p.model_version == version)
    query = (
        sa.select(p.features, p.prediction, p.probability, p.label)
        .where(*where)
        .order_by(p.id.desc())
        .limit(window)
    )
    with engine.connect() as conn:
        return [
            (json.loads(f), int(c), float(prob), None if y is None else int(y))
            for f, c, prob, y in conn.execute(query)
        ]


def _shadow_pairs(
    engine: Engine,
    model_name: str,
    since: dt.datetime,
    window: int,
    until: dt.datetime | None = None,
) -> list[tuple[dict, int, float, int, float, int | None]]:
    """(answer's features, answer's class and probability, shadow's class and probability,
    label) of the newest shadow rows."""
    return [
        (json.loads(f), int(a), float(pa), int(c), float(pc), None if y is None else int(y))
        for f, a, pa, c, pc, y in shadow_pairs(
            engine, model_name, since, window, until, with_features=True
        )
    ]


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _segmenter(values: Sequence):
    """("categorical" or "numeric", value -> segment name, segment name -> reading order).
    Numbers are cut at the quartiles of the values seen (both versions' records), so each
    segment holds about a quarter of them; bins read low to high, categories by name, the
    missing last."""
    present = [v for v in values if not _missing(v)]
    if not present or not all(_is_number(v) for v in present):
        return (
            "categorical",
            lambda v: MISSING if _missing(v) else str(v),
            lambda name: (name == MISSING, name),
        )
    ordered = sorted(float(v) for v in present)
    cuts = sorted({ordered[len(ordered) * q // QUARTILES] for q in range(1, QUARTILES)})
    bounds = [-math.inf, *cuts, math.inf]
    bins = [_interval(low, high) for low, high in itertools.pairwise(bounds)]

    def segment_of(value) -> str:
        if _missing(value):
            return MISSING
        return bins[bisect.bisect_right(cuts, float(value))]

    return (
        "numeric",
        segment_of,
        lambda name: (name == MISSING, bins.index(name) if name in bins else 0),
    )


def _missing(value) -> bool:
    return value is None or (_is_number(value) and math.isnan(value))


def _number(value: float) -> str:
    """A bound as a person reads it: whole above a thousand, three figures below."""
    return f"{value:,.0f}" if abs(value) >= 1_000 else f"{value:.3g}"


def _interval(low: float, high: float) -> str:
    left = "" if math.isinf(low) else _number(low)
    right = "" if math.isinf(high) else _number(high)
    if not left:
        return f"< {right}"
    if not right:
        return f">= {left}"
    return f"{left} to < {right}"


def _side(rows: Sequence[Row], minimum: int) -> Side:
    labelled = [(y, prob, c) for _, c, prob, y in rows if y is not None]
    found = delong([y for y, _, _ in labelled], [[prob for _, prob, _ in labelled]], minimum)
    auc, stderr = (found[0][0], math.sqrt(found[1][0][0])) if found else (None, None)
    n = len(labelled)
    error = error_se = None
    if n >= minimum:
        error = sum(1 for y, _, c in labelled if c != y) / n
        error_se = math.sqrt(max(error * (1 - error), 1 / n) / n)
    return Side(
        scored=len(rows),
        labelled=n,
        predicted_rate=sum(c for _, c, _, _ in rows) / len(rows) if rows else None,
        outcome_rate=sum(y for y, _, _ in labelled) / n if labelled else None,
        error_rate=error,
        error_stderr=error_se,
        auc=auc,
        auc_stderr=stderr,
    )


def _independent(name: str, champion: Sequence[Row], candidate: Sequence[Row], minimum: int):
    mine, theirs = _side(champion, minimum), _side(candidate, minimum)
    difference = stderr = None
    if mine.auc is not None and theirs.auc is not None:
        difference = theirs.auc - mine.auc
        stderr = math.hypot(mine.auc_stderr or 0.0, theirs.auc_stderr or 0.0)
    return Segment(name, mine, theirs, difference, stderr)


def _paired(name: str, champion: Sequence[Row], candidate: Sequence[Row], minimum: int):
    """Both versions scored the same records (in the same order): the paired difference."""
    mine, theirs = _side(champion, minimum), _side(candidate, minimum)
    labelled = [
        (a[3], a[2], b[2]) for a, b in zip(champion, candidate, strict=True) if a[3] is not None
    ]
    found = delong(
        [y for y, _, _ in labelled],
        [[a for _, a, _ in labelled], [b for _, _, b in labelled]],
        minimum,
    )
    if found is None:
        return Segment(name, mine, theirs, None, None)
    (first, second), cov = found
    variance = cov[0][0] + cov[1][1] - 2 * cov[0][1]
    return Segment(name, mine, theirs, second - first, math.sqrt(max(variance, 0.0)))
