"""`mlops-lab exam`: incidents back to back under a time limit, unnamed, scored, with a report."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from mlops_lab.cli.oncall import show_page
from mlops_lab.cli.output import Wait, Why, checking, done, err, out, print_conditions
from mlops_lab.interview.timing import clock
from platform_core.errors import PlatformError
from platform_core.settings import get_settings

app = typer.Typer(
    help="A timed exam: on-call incidents back to back, unnamed, scored, with a report."
)


def _exam():
    from mlops_lab.interview.exam import Exam

    return Exam(get_settings(), console=err)


def _page(exam, round_) -> None:
    """Wait for the incident's symptom, then show the page (as `oncall start` does)."""
    with err.status("Waiting for the symptom…") as spinner:

        def waiting(what: str, seconds: float) -> None:
            spinner.update(f"Waiting for the symptom ({what}): {clock(seconds)}")

        round_ = exam.await_symptom(round_, on_wait=waiting)
    show_page(exam.oncall, round_)


def _progress_line(state, exam) -> str:
    number = len(state.done) + 1
    return f"Incident {number} of {state.count}; {clock(max(0.0, exam.time_left_s(state)))} left."


@app.command()
def start(
    count: Annotated[int, typer.Option(min=1, max=10, help="Incidents in the exam.")] = 3,
    minutes: Annotated[
        float, typer.Option(min=1, help="Time for the whole exam, in minutes.")
    ] = 45.0,
    pool: Annotated[
        str | None,
        typer.Option(
            help="Draw only from these labs (comma-separated ids), to practise some of them."
        ),
    ] = None,
) -> None:
    """Start an exam: each incident is paged unnamed once its symptom shows; `exam check` moves
    on to the next once it is fixed; the score counts time to mitigate and to resolve, hints
    and reference fixes."""
    exam = _exam()
    wanted = [i.strip() for i in pool.split(",") if i.strip()] if pool else None
    with err.status("Something is breaking…"):
        state, round_ = exam.start(count, minutes, wanted)
    _page(exam, round_)
    done(
        f"{_progress_line(state, exam)} Work it with the usual tools; `mlops-lab exam check` "
        'when it is fixed (some incidents want the cause: `mlops-lab exam answer cause="..."`), '
        "`mlops-lab exam hint` if you are stuck (hints cost points)."
    )


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="A JSON object on stdout.")] = False,
) -> None:
    """The incident in progress (its page), the time left and the score so far; after the
    exam, its result and where the report is."""
    from mlops_lab.interview.exam import points

    exam = _exam()
    state = exam.state()
    if state is None:
        done("No exam yet. `mlops-lab exam start` begins one.")
        return
    running = state.ended_at is None
    if as_json:
        document = {
            "running": running,
            "count": state.count,
            "started_at": state.started_at,
            "deadline": state.deadline,
            "seconds_left": max(0.0, exam.time_left_s(state)) if running else 0.0,
            "score": state.score,
            "max_score": state.max_score,
            "report": state.report,
            "incidents": [
                {
                    "lab": i.lab,
                    "outcome": i.outcome,
                    "seconds_to_mitigate": i.mitigate_s,
                    "seconds_to_resolve": i.resolve_s,
                    "slo_breached": i.slo_breached,
                    "hints": i.hints,
                    "points": points(i, state.budget_s),
                }
                for i in state.done
            ],
        }
        out.print_json(json.dumps(document))
        return
    if running:
        round_ = exam.oncall.current()
        if round_ is not None:
            show_page(exam.oncall, round_)
        done(f"{_progress_line(state, exam)} Score so far: {state.score}.")
        return
    _print_result(state)


def _print_result(state) -> None:
    from mlops_lab.interview.exam import points

    table = Table("#", "Incident", "Outcome", "Mitigated", "Resolved", "Hints", "Points")
    table.box = box.SIMPLE
    for number, incident in enumerate(state.done, 1):
        table.add_row(
            str(number),
            f"{incident.lab}: {incident.title}",
            incident.outcome,
            clock(incident.mitigate_s),
            clock(incident.resolve_s),
            str(incident.hints),
            str(points(incident, state.budget_s)),
        )
    out.print(table)
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(state.started_at))
    done(f"Exam of {when}: {state.score} / {state.max_score}. Report: {state.report} (and .html).")


@app.command()
def check(wait: Wait = 30.0, why: Why = False) -> None:
    """Check the incident in progress; fixed, it is recorded and the next one is paged (or the
    exam ends with its report)."""
    exam = _exam()
    report, state, next_round = checking(
        "the incident", lambda pending: exam.check(wait_s=wait, on_pending=pending, why=why)
    )
    if report is None:
        err.print("[bold]Time is up.[/] The platform is back in its golden state.")
        _print_result(state)
        return
    print_conditions(report.conditions, why)
    if not report.passed:
        failed = sum(not c.passed for c in report.conditions)
        raise PlatformError(
            f"Not fixed yet: {failed} of {len(report.conditions)} conditions fail; "
            f"{clock(max(0.0, exam.time_left_s(state)))} left in the exam.",
            hint="`mlops-lab exam hint` for a hint (it costs points); `mlops-lab exam giveup` "
            "ends the exam.",
        )
    last = state.done[-1]
    err.print(f"[bold]Fixed: it was lab {last.lab}: {last.title}[/] ({last.outcome}).")
    if next_round is None:
        _print_result(state)
        return
    _page(exam, next_round)
    done(f"{_progress_line(state, exam)} `mlops-lab exam check` when it is fixed.")


@app.command()
def hint() -> None:
    """The next hint for the incident in progress (each costs points)."""
    exam = _exam()
    exam.require_running()
    tier, tiers, text = exam.oncall.hint()
    out.print(f"[bold]Hint {tier}/{tiers}[/]: {text}", highlight=False)
    done(f"{tier} of {tiers} hints used on this incident.")


@app.command()
def answer(
    answers: Annotated[
        list[str], typer.Argument(help='KEY=VALUE pairs, e.g. cause="what you found at fault"')
    ],
) -> None:
    """Report what you found (the cause), without naming the incident."""
    from mlops_lab.cli.lab import parse_answers

    exam = _exam()
    exam.require_running()
    pairs = parse_answers(answers)
    exam.oncall.answer(pairs)
    done(f"Recorded: {', '.join(f'{k}={v}' for k, v in pairs.items())}.")


@app.command()
def solve() -> None:
    """Apply the reference fix to the incident in progress: it then scores no points."""
    exam = _exam()
    exam.require_running()
    exam.oncall.solve()
    done("Reference fix applied; this incident scores no points. `mlops-lab exam check` moves on.")


@app.command()
def giveup() -> None:
    """End the exam now: the incident in progress is named, the platform put back, the report
    written."""
    exam = _exam()
    with err.status("Putting the platform back…"):
        state = exam.giveup()
    _print_result(state)
