"""What live evidence says about a rollout's candidate, beside the champion, since it started.

The figures come from two places: the prediction log (what each version scored, the outcomes
that came back, and in shadow the two versions' answers to the same records) and serving's
metrics in Prometheus (errors and latency by version). :class:`Analysis` is what the Rollout
dashboard, ``mlops-lab rollout status`` and the automatic decision all read; a figure the
evidence cannot give yet (too few outcomes, Prometheus unreachable) is None, never a guess.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from platform_core.rollout import Rollout


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
