"""The automatic decision on a rollout: promote the candidate, extend the rollout, or abort it.

:func:`decide` weighs the live evidence (:class:`~platform_core.rollout_analysis.Analysis`)
against the rules in the settings (:class:`Rules`, the ``rollout_*`` settings). Each rule passes,
fails or waits for evidence:

- volume: the candidate scored ``rollout_min_scored`` records;
- errors and latency (from Prometheus, once the candidate had ``rollout_min_scored`` requests):
  its error rate at most ``rollout_max_error_ratio`` x the champion's +
  ``rollout_error_rate_allowance``, its p99 at most ``rollout_max_p99_ratio`` x the champion's +
  ``rollout_p99_allowance_s``;
- agreement (shadow only): the two predict the same class on ``rollout_min_agreement`` of the
  records, else the candidate is broken rather than better;
- quality (once each version has ``rollout_min_labelled`` outcomes): the AUC difference,
  candidate - champion, judged with its uncertainty: its lower bound (``rollout_auc_z`` standard
  errors below) must clear ``rollout_min_auc_difference``; an upper bound below it fails.

Any failure aborts. Otherwise anything still waiting extends the rollout, unless it is older than
``rollout_max_age_s``: then it is aborted, "no decision within" that time. When every rule passes,
the candidate is promoted. Every reason names the figure, its value and the rule, so the tag left
on the version explains itself.

The decision is a pure function, tested with constructed analyses; :mod:`pipelines.rollout_check`
carries it out in the registry, in the ``rollout-decision`` flow that ``pipelines.runner`` serves
on ``rollout_check_interval_s``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from platform_core import rollout as state
from platform_core.rollout_analysis import Analysis, VersionFigures
from platform_core.settings import ENV_PREFIX, Settings

Action = Literal["promote", "extend", "abort"]
PROMOTE: Action = "promote"
EXTEND: Action = "extend"
ABORT: Action = "abort"

# A rule's verdict on the evidence.
_PASS, _WAIT, _FAIL = "pass", "wait", "fail"


def _setting(name: str) -> str:
    return f"{ENV_PREFIX}{name.upper()}"


@dataclass(frozen=True)
class Rules:
    """The thresholds a rollout is judged by (the ``rollout_*`` settings, documented there)."""

    min_scored: int
    min_labelled: int
    max_error_ratio: float
    error_rate_allowance: float
    max_p99_ratio: float
    p99_allowance_s: float
    min_auc_difference: float
    auc_z: float
    min_agreement: float
    max_age_s: float

    @classmethod
    def of(cls, settings: Settings) -> Rules:
        return cls(
            min_scored=settings.rollout_min_scored,
            min_labelled=settings.rollout_min_labelled,
            max_error_ratio=settings.rollout_max_error_ratio,
            error_rate_allowance=settings.rollout_error_rate_allowance,
            max_p99_ratio=settings.rollout_max_p99_ratio,
            p99_allowance_s=settings.rollout_p99_allowance_s,
            min_auc_difference=settings.rollout_min_auc_difference,
            auc_z=settings.rollout_auc_z,
            min_agreement=settings.rollout_min_agreement,
            max_age_s=settings.rollout_max_age_s,
        )

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    action: Action
    # Each names the figure, its value and the rule: why this action, or what it waits for.
    reasons: tuple[str, ...]

    def summary(self) -> str:
        return f"{self.action}: " + "; ".join(self.reasons)

    def to_dict(self) -> dict:
        return {"action": self.action, "reasons": list(self.reasons)}


@dataclass(frozen=True)
class _Verdict:
    outcome: str
    reason: str


def decide(analysis: Analysis, rules: Rules) -> Decision:
    """Promote, extend or abort the rollout ``analysis`` describes, and why."""
    verdicts = [
        _volume(analysis.candidate, rules),
        *_service(analysis, rules),
        *_agreement(analysis, rules),
        _quality(analysis, rules),
    ]
    failed = [v.reason for v in verdicts if v.outcome == _FAIL]
    if failed:
        return Decision(ABORT, tuple(failed))
    waiting = [v.reason for v in verdicts if v.outcome == _WAIT]
    if not waiting:
        return Decision(PROMOTE, tuple(v.reason for v in verdicts))
    if analysis.age_s >= rules.max_age_s:
        limit = (
            f"no decision within {_duration(rules.max_age_s)} "
            f"({_setting('rollout_max_age_s')}={rules.max_age_s:g}); "
            f"the rollout is {_duration(analysis.age_s)} old and still waited for"
        )
        return Decision(ABORT, (limit, *waiting))
    return Decision(EXTEND, tuple(waiting))


def _volume(candidate: VersionFigures, rules: Rules) -> _Verdict:
    rule = f"{_setting('rollout_min_scored')}={rules.min_scored}"
    if candidate.scored < rules.min_scored:
        return _Verdict(_WAIT, f"candidate scored {candidate.scored} records, fewer than {rule}")
    return _Verdict(_PASS, f"candidate scored {candidate.scored} records ({rule})")


def _service(analysis: Analysis, rules: Rules) -> list[_Verdict]:
    """Error rate and p99 latency against the champion's, once the candidate had enough
    requests that one slow or failed request is not the whole story."""
    candidate, champion = analysis.candidate, analysis.champion
    if candidate.requests is None:
        return [
            _Verdict(
                _WAIT,
                "errors and latency: Prometheus has no request figures for the candidate yet",
            )
        ]
    if candidate.requests < rules.min_scored:
        return [
            _Verdict(
                _WAIT,
                f"errors and latency: candidate had {candidate.requests:.0f} requests, fewer "
                f"than {_setting('rollout_min_scored')}={rules.min_scored}",
            )
        ]
    return [
        _against_champion(
            "error rate",
            candidate.error_rate,
            champion.error_rate,
            rules.max_error_ratio,
            rules.error_rate_allowance,
            f"{_setting('rollout_max_error_ratio')}, {_setting('rollout_error_rate_allowance')}",
            "{:.4f}",
        ),
        _against_champion(
            "p99 latency",
            candidate.p99_s,
            champion.p99_s,
            rules.max_p99_ratio,
            rules.p99_allowance_s,
            f"{_setting('rollout_max_p99_ratio')}, {_setting('rollout_p99_allowance_s')}",
            "{:.3f}s",
        ),
    ]


def _against_champion(
    figure: str,
    candidate: float | None,
    champion: float | None,
    ratio: float,
    allowance: float,
    settings: str,
    fmt: str,
) -> _Verdict:
    if candidate is None or champion is None:
        missing = "candidate" if candidate is None else "champion"
        return _Verdict(_WAIT, f"{figure}: no figure for the {missing} from Prometheus yet")
    limit = ratio * champion + allowance
    shown = (
        f"candidate {fmt.format(candidate)}, limit {fmt.format(limit)} = {ratio:g} x champion "
        f"{fmt.format(champion)} + {fmt.format(allowance)} ({settings})"
    )
    if candidate > limit:
        return _Verdict(_FAIL, f"{figure} too high: {shown}")
    return _Verdict(_PASS, f"{figure} within the limit: {shown}")


def _agreement(analysis: Analysis, rules: Rules) -> list[_Verdict]:
    """Shadow only: both versions answered the same records, so a candidate that contradicts
    the champion on most of them is broken (an inverted label, a unit bug) before any outcome
    comes back to prove it."""
    if analysis.rollout.plan.mode != state.SHADOW or rules.min_agreement <= 0:
        return []
    if analysis.candidate.scored < rules.min_scored:
        return []  # the volume rule already says it waits for records
    rule = f"{_setting('rollout_min_agreement')}={rules.min_agreement:g}"
    if analysis.agreement is None:
        return [_Verdict(_WAIT, f"agreement with the champion: no figure yet ({rule})")]
    shown = f"agreement with the champion {analysis.agreement:.3f} ({rule})"
    if analysis.agreement < rules.min_agreement:
        return [_Verdict(_FAIL, f"{shown}: the candidate contradicts it too often")]
    return [_Verdict(_PASS, shown)]


def _quality(analysis: Analysis, rules: Rules) -> _Verdict:
    candidate, champion = analysis.candidate, analysis.champion
    rule = f"{_setting('rollout_min_labelled')}={rules.min_labelled}"
    short = [
        f"{figures.role} {figures.labelled}"
        for figures in (candidate, champion)
        if figures.labelled < rules.min_labelled
    ]
    if short:
        return _Verdict(_WAIT, f"outcomes: {', '.join(short)} labelled records, fewer than {rule}")
    difference, stderr = analysis.auc_difference, analysis.auc_difference_stderr
    if difference is None or stderr is None:
        return _Verdict(
            _WAIT,
            "AUC difference: not computable yet from the outcomes (a single class among them?)",
        )
    margin = rules.auc_z * stderr
    lower, upper = difference - margin, difference + margin
    shown = (
        f"AUC difference {difference:+.4f} (candidate {_auc(candidate)} - champion "
        f"{_auc(champion)}), {rules.auc_z:g} standard errors either side: [{lower:+.4f}, "
        f"{upper:+.4f}]; {_setting('rollout_min_auc_difference')}={rules.min_auc_difference:+g}"
    )
    if lower >= rules.min_auc_difference:
        return _Verdict(_PASS, f"{shown}: the lower bound clears it")
    if upper < rules.min_auc_difference:
        return _Verdict(_FAIL, f"{shown}: even the upper bound is below it")
    return _Verdict(_WAIT, f"{shown}: the interval straddles it, more outcomes will tell")


def _auc(figures: VersionFigures) -> str:
    return f"{figures.auc:.4f}" if figures.auc is not None else "?"


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g}{unit}"
    return f"{seconds:.3g}s"
