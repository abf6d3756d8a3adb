"""`mlops-lab rollout ...`: try a version beside the champion before it replaces it.

``start VERSION --shadow`` has the candidate score every request after the champion answered it
(nobody gets its answer); ``--canary PCT`` has it answer that share of requests, the same
applicant always to the same version when requests send ``applicant_key``. ``promote`` makes
the candidate the champion through the quality gate's own registry code; ``abort`` removes it.
All four write the registry only: serving follows at its next poll, every replica alike, and a
restarted one finds the rollout where it was.
"""

from __future__ import annotations

import getpass
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import httpx
import typer
from prometheus_client.parser import text_string_to_metric_families

from mlops_lab.cli.model import registry_client
from mlops_lab.cli.output import done, err, out
from platform_core import http_calls
from platform_core.errors import PlatformError
from platform_core.settings import Settings, get_settings

if TYPE_CHECKING:
    from platform_core.rollout import Rollout
    from platform_core.rollout_analysis import Analysis
    from platform_core.rollout_segments import Segments

app = typer.Typer(help="Try a model version beside the champion: shadow, canary, promote, abort.")

_FOLLOWS = "Serving follows at its next registry poll (every {interval:g}s)."


def _by(command: str) -> str:
    """Who made a change, as the registry records it."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        user = "someone"
    return f"{user} (mlops-lab rollout {command})"


@app.command()
def start(
    version: Annotated[str, typer.Argument(help="The version to try, e.g. 3 or v3.")],
    shadow: Annotated[
        bool,
        typer.Option(
            "--shadow",
            help="The candidate scores every request after the champion answered; nobody gets "
            "its answer.",
        ),
    ] = False,
    canary: Annotated[
        float | None,
        typer.Option(
            "--canary",
            metavar="PCT",
            help="The candidate answers this percentage of requests (sticky per applicant_key).",
        ),
    ] = None,
) -> None:
    """Start trying VERSION beside the champion (again with another mode or share: change it)."""
    from pipelines import rollout
    from platform_core.rollout import SHADOW, Plan

    if shadow == (canary is not None):
        raise PlatformError(
            "Say how to try the candidate: --shadow or --canary PCT (one of them).",
            hint="e.g. `mlops-lab rollout start 3 --shadow`, then `--canary 10` to widen it.",
        )
    try:
        plan = Plan(SHADOW) if shadow else Plan.canary(canary or 0.0)
    except ValueError as error:
        raise PlatformError(f"--canary {canary:g}: {error}.", hint="e.g. --canary 10") from None
    settings = get_settings()
    client = registry_client(settings)
    version = version.removeprefix("v")
    with err.status(f"Checking that v{version} can be loaded…"):
        started = rollout.start(client, settings, version, plan, by=_by("start"))
    err.print(_FOLLOWS.format(interval=settings.alias_poll_interval_s), highlight=False)
    done(f"v{started.version} of {settings.model_name} is the candidate: {plan.describe()}.")


def _last_check(running: Rollout, settings: Settings) -> str:
    """What the automatic decision said at its last check of this rollout (or when it will)."""
    if not running.last_decision:
        return (
            f"Automatic decision: no check yet (the rollout-decision flow runs every "
            f"{settings.rollout_check_interval_s:g}s)."
        )
    reasons = f": {running.last_reasons}" if running.last_reasons else ""
    return f"Automatic decision at {running.last_checked_at}: {running.last_decision}{reasons}."


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="A JSON object on stdout.")] = False,
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            metavar="FEATURE",
            help="Also split the evidence by a feature (its values, or quartiles of a number): "
            "a candidate as good overall can be worse for one group.",
        ),
    ] = None,
) -> None:
    """The rollout in progress (or the last one, and how it ended), and what serving has loaded."""
    from platform_core import contract
    from platform_core import rollout as state

    settings = get_settings()
    client = registry_client(settings)
    champion = contract.champion(client, settings)
    running = state.current(client, settings)
    last = state.last_ended(client, settings) if running is None else None
    serving = _serving_view(settings)
    analysis, unanalysed = _analysis(settings, client) if running is not None else (None, None)
    segments = _segments(settings, client, by) if by else None
    if as_json:
        document = {
            "model_name": settings.model_name,
            "champion": str(champion.version) if champion else None,
            "rollout": running.to_dict() if running else None,
            "last_ended": last.to_dict() if last else None,
            "serving": serving.to_dict(),
            "analysis": analysis.to_dict() if analysis else None,
            "analysis_problem": unanalysed,
        }
        if by:
            document["segments"] = segments.to_dict() if segments else None
        out.print_json(json.dumps(document))
    champ = f"champion v{champion.version}" if champion else "no champion"
    if running is None:
        if not as_json and last is not None:
            err.print(
                f"Last rollout: v{last.version} {last.outcome} at {last.ended_at} by "
                f"{last.ended_by}: {last.reason}",
                highlight=False,
            )
        if not as_json and segments is not None:
            _print_segments(segments)
        done(f"No rollout of {settings.model_name} in progress; {champ}.")
        return
    if not as_json:
        err.print(f"Started {running.started_at} by {running.started_by}.", highlight=False)
        if running.problem:
            err.print(f"[yellow]![/] Its tags are not usable: {running.problem}.", highlight=False)
        err.print(serving.describe(running.version), highlight=False)
        err.print(_last_check(running, settings), highlight=False)
        if analysis is not None:
            _print_analysis(analysis)
        elif unanalysed:
            err.print(f"[yellow]![/] No live analysis: {unanalysed}", highlight=False)
        if segments is not None:
            _print_segments(segments)
    done(f"v{running.version} is being rolled out ({running.plan.describe()}) beside {champ}.")


@app.command()
def promote(
    reason: Annotated[
        str | None, typer.Option(help="Why, recorded on the version (default: by hand).")
    ] = None,
) -> None:
    """Make the candidate the champion; the rollout ends as promoted."""
    from pipelines import rollout

    settings = get_settings()
    by = _by("promote")
    move = rollout.promote(registry_client(settings), settings, by=by, reason=reason or "by hand")
    err.print(_FOLLOWS.format(interval=settings.alias_poll_interval_s), highlight=False)
    was = f"v{move.previous}" if move.previous else "no champion"
    done(f"{settings.model_name} champion: {was} -> v{move.current}; the rollout is over.")


@app.command()
def abort(
    reason: Annotated[
        str | None, typer.Option(help="Why, recorded on the version (default: by hand).")
    ] = None,
) -> None:
    """End the rollout: the candidate goes, the champion answers everything."""
    from pipelines import rollout

    settings = get_settings()
    by = _by("abort")
    ended = rollout.abort(registry_client(settings), settings, by=by, reason=reason or "by hand")
    err.print(_FOLLOWS.format(interval=settings.alias_poll_interval_s), highlight=False)
    done(f"Aborted the rollout of v{ended.version} ({ended.plan.describe()}).")


def _analysis(settings: Settings, client) -> tuple[Analysis | None, str | None]:
    """The live analysis of the rollout, or why there is none (the prediction log cannot be
    read). Prometheus being away only leaves its figures empty."""
    from sqlalchemy.exc import SQLAlchemyError

    from platform_core import prediction_log
    from platform_core.rollout_analysis import analyse

    url = settings.prediction_log_db_url
    try:
        engine = prediction_log.connect(url)
        try:
            return analyse(settings, client, engine), None
        finally:
            engine.dispose()
    except SQLAlchemyError as error:
        first = str(error).splitlines()[0]
        return None, (
            f"the prediction log at {prediction_log.safe_url(url)} cannot be read ({first}); "
            "`mlops-lab status` says whether its database runs"
        )


def _print_analysis(analysis: Analysis) -> None:
    """Champion and candidate side by side, then what compares them."""
    from rich import box
    from rich.table import Table

    def share(value: float | None) -> str:
        return "–" if value is None else f"{value:.1%}"

    def auc(value: float | None, stderr: float | None) -> str:
        if value is None:
            return "–"
        return f"{value:.3f} ± {stderr:.3f}" if stderr is not None else f"{value:.3f}"

    def p99(value: float | None) -> str:
        return "–" if value is None else f"{value * 1000:,.0f} ms"

    champion, candidate = analysis.champion, analysis.candidate
    table = Table(
        f"since {analysis.rollout.started_at or 'the start'}",
        f"champion v{champion.version}",
        f"candidate v{candidate.version} ({candidate.role})",
        box=box.SIMPLE,
    )
    for name, render in (
        ("records scored", lambda f: f"{f.scored:,}"),
        ("with an outcome", lambda f: f"{f.labelled:,}"),
        ("live ROC AUC", lambda f: auc(f.auc, f.auc_stderr)),
        ("requests (Prometheus)", lambda f: "–" if f.requests is None else f"{f.requests:,.0f}"),
        ("error ratio", lambda f: share(f.error_rate)),
        (
            "p99 latency" if candidate.role != "shadow" else "p99 time in the model",
            lambda f: p99(f.p99_s),
        ),
    ):
        table.add_row(name, render(champion), render(candidate))
    err.print(table)
    if analysis.agreement is not None or candidate.role == "shadow":
        distance = "–" if analysis.score_distance is None else f"{analysis.score_distance:.3f}"
        err.print(
            f"Shadow: same class on {share(analysis.agreement)} of the records both scored; "
            f"score distance (Kolmogorov-Smirnov) {distance}.",
            highlight=False,
        )
    if analysis.auc_difference is not None:
        paired = "paired, same records" if candidate.role == "shadow" else "independent records"
        err.print(
            f"AUC difference (candidate - champion): {analysis.auc_difference:+.3f} ± "
            f"{analysis.auc_difference_stderr or 0:.3f} ({paired}).",
            highlight=False,
        )
    else:
        err.print(
            "No AUC difference yet: too few outcomes for one of the versions.", highlight=False
        )


def _segments(settings: Settings, client, feature: str) -> Segments | None:
    """The rollout's evidence split by ``feature`` (a log that cannot be read is an error here:
    the learner asked for this split)."""
    from sqlalchemy.exc import SQLAlchemyError

    from platform_core import prediction_log
    from platform_core.rollout_segments import by_feature

    url = settings.prediction_log_db_url
    try:
        engine = prediction_log.connect(url)
        try:
            return by_feature(settings, client, engine, feature)
        finally:
            engine.dispose()
    except SQLAlchemyError as error:
        raise PlatformError(
            f"The prediction log at {prediction_log.safe_url(url)} cannot be read "
            f"({str(error).splitlines()[0]}).",
            hint="`mlops-lab status` says whether its database runs.",
        ) from None


def _print_segments(found: Segments) -> None:
    """Two rows per segment, champion then candidate: records and outcomes, the shares predicted
    and really positive, wrong decisions and AUC there; the candidate's row says how it
    compares (the standard errors are in --json)."""
    from rich import box
    from rich.table import Table

    def rate(value: float | None) -> str:
        return "–" if value is None else f"{value:.0%}"

    def versus(segment) -> str:
        mine, theirs = segment.champion, segment.candidate
        wrong = (
            None
            if mine.error_rate is None or theirs.error_rate is None
            else theirs.error_rate - mine.error_rate
        )
        said = []
        if wrong is not None:
            said.append(f"{wrong * 100:+.0f} pts wrong")
        if segment.auc_difference is not None:
            said.append(f"AUC {segment.auc_difference:+.2f}")
        text = ", ".join(said)
        return f"[red]worse[/]: {text}" if segment.worse else text

    champion = f"v{found.champion_version}" if found.champion_version else "champion"
    candidate = f"v{found.candidate_version}"
    over = f", over the last rollout ({found.ended})" if found.ended else ""
    quartiles = " (quartiles)" if found.kind == "numeric" else ""
    table = Table(
        box=box.SIMPLE,
        title=f"By {found.feature}{quartiles}: champion {champion}, candidate {candidate} "
        f"({found.candidate_role}){over}",
    )
    table.add_column(found.feature, overflow="fold")
    table.add_column("", no_wrap=True)
    table.add_column("n / labelled", justify="right", no_wrap=True)
    table.add_column("predicted positive", justify="right")
    table.add_column("really positive", justify="right")
    table.add_column("wrong", justify="right")
    table.add_column("AUC", justify="right")
    table.add_column(f"{candidate} vs {champion}", overflow="fold")
    for segment in found.segments:
        for version, side in ((champion, segment.champion), (candidate, segment.candidate)):
            mine = side is segment.champion
            table.add_row(
                segment.name if mine else "",
                version,
                f"{side.scored:,} / {side.labelled:,}",
                rate(side.predicted_rate),
                rate(side.outcome_rate),
                rate(side.error_rate),
                "–" if side.auc is None else f"{side.auc:.3f}",
                "" if mine else versus(segment),
            )
    err.print(table)
    worse = [s.name for s in found.segments if s.worse]
    paired = "paired, same records" if found.candidate_role == "shadow" else "independent records"
    if worse:
        err.print(
            f"[red]✗[/] Where {found.feature} is {', '.join(worse)}, the candidate is wrong more "
            f"often or ranks worse than the champion, by more than two standard errors ({paired}).",
            highlight=False,
        )
    else:
        err.print(
            f"No segment of {found.feature} where the candidate is wrong more often or ranks worse "
            f"by more than two standard errors ({paired}; a segment needs outcomes of both "
            "versions).",
            highlight=False,
        )


@dataclass(frozen=True)
class ServingView:
    """What serving says it has loaded, from its /metrics (one replica: the one at ``url``)."""

    url: str
    problem: str | None = None
    champion: str | None = None
    candidate: str | None = None
    mode: str | None = None
    shadow_scored: float = 0.0
    shadow_dropped: float = 0.0
    shadow_failed: float = 0.0

    def describe(self, version: str) -> str:
        if self.problem is not None:
            return f"Serving at {self.url}: {self.problem}."
        if self.candidate != version:
            return (
                f"Serving at {self.url} has not loaded v{version} yet (it polls the registry; "
                "`mlops-lab logs serving` says why if this lasts)."
            )
        counts = ""
        if self.mode == "shadow":
            counts = (
                f"; shadow-scored {self.shadow_scored:,.0f} records, dropped "
                f"{self.shadow_dropped:,.0f}, failed {self.shadow_failed:,.0f}"
            )
        return f"Serving at {self.url} has v{version} loaded ({self.mode}){counts}."

    def to_dict(self) -> dict:
        return {
            "url": self.url,
            "reachable": self.problem is None,
            "problem": self.problem,
            "champion": self.champion,
            "candidate": self.candidate,
            "mode": self.mode,
            "shadow_scored": self.shadow_scored,
            "shadow_dropped": self.shadow_dropped,
            "shadow_failed": self.shadow_failed,
        }


def _serving_view(settings: Settings) -> ServingView:
    url = settings.url(settings.serving_port)
    try:
        response = http_calls.get(f"{url}/metrics", timeout=3)
        response.raise_for_status()
    except httpx.HTTPError as error:
        return ServingView(url, problem=f"not reachable ({error}); `mlops-lab status` says more")
    found: dict[str, float] = {}
    mode = None
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "serving_rollout_info":
                mode = sample.labels.get("mode")
            found[sample.name] = found.get(sample.name, 0.0) + sample.value

    def version(name: str) -> str | None:
        number = int(found.get(name, 0))
        return str(number) if number else None

    return ServingView(
        url,
        champion=version("serving_model_version"),
        candidate=version("serving_candidate_version"),
        mode=mode,
        shadow_scored=found.get("serving_shadow_scored_total", 0.0),
        shadow_dropped=found.get("serving_shadow_dropped_total", 0.0),
        shadow_failed=found.get("serving_shadow_failed_total", 0.0),
    )
