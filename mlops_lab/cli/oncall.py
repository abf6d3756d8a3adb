"""`mlops-lab oncall ...`: get paged with a random incident, find it, fix it, against the clock.

Until the check passes (or you give up) nothing here names the lab: you get the page once the
symptom it names is there, the time it started and where the tools are, as an on-call engineer
does.
"""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from mlops_lab.cli.lab import replay_line
from mlops_lab.cli.output import (
    Wait,
    Why,
    checking,
    conditions_json,
    done,
    err,
    out,
    print_conditions,
)
from mlops_lab.interview.timing import clock
from platform_core.errors import PlatformError
from platform_core.settings import get_settings

app = typer.Typer(help="A mock on-call shift: a random incident, named only once you fix it.")


def _oncall():
    from mlops_lab.interview.exam import Exam
    from mlops_lab.interview.oncall import Oncall

    settings = get_settings()
    if Exam(settings, console=err).running() is not None:
        # Its incidents are on-call rounds: moving one on here would leave the exam behind.
        raise PlatformError(
            "An exam is running; its incidents are worked with `mlops-lab exam` commands.",
            hint="`mlops-lab exam status`, `exam hint`, `exam check`; `exam giveup` ends it.",
        )
    return Oncall(settings, console=err)


def show_page(oncall, round_) -> None:
    pages = oncall.pages(round_)
    title = "You are paged" if len(pages) == 1 else f"You are paged {len(pages)} times"
    table = Table(box=box.ROUNDED, show_header=False, title=f"[bold red]{title}[/]")
    table.add_column(style="bold")
    table.add_column()
    for number, page in enumerate(pages, 1):
        if len(pages) > 1:
            table.add_row(f"[red]Page {number}[/]", "", end_section=False)
        for key, value in page.items():
            table.add_row(key.capitalize(), value, end_section=key == list(page)[-1])
    for name, at in (("Started", round_.started_at), ("Paged", round_.paged_at)):
        if at is not None:
            table.add_row(name, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)))
    symptom = round_.symptom
    if symptom is not None and not symptom.visible:
        table.add_row("Symptom", f"[yellow]symptom not yet visible[/] ({symptom.what})")
    for name, url in oncall.urls():
        table.add_row(name, url)
    out.print(table)


@app.command()
def start(
    include_solved: Annotated[
        bool,
        typer.Option(
            "--include-solved", help="Also page with incidents you have solved (practice again)."
        ),
    ] = False,
    expert: Annotated[
        bool,
        typer.Option(
            "--expert",
            help="Two unrelated incidents at once, and an alert that is no fault; the round "
            "ends when both are fixed.",
        ),
    ] = False,
    symptom_wait: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="Wait at most this many seconds for the page's symptom to show before paging "
            "anyway [default: the slowest alert's delay under the current settings].",
        ),
    ] = None,
) -> None:
    """Break the platform with a random incident you have not solved; once the symptom the page
    names is there (its alert fires, or the incident's check fails), shows only the page."""
    from mlops_lab.interview.oncall import symptom_bound_s

    oncall = _oncall()
    with err.status("Something is breaking…"):
        round_ = oncall.start_expert() if expert else oncall.start(include_solved=include_solved)
    bound = symptom_bound_s(oncall.settings) if symptom_wait is None else symptom_wait
    with err.status("Waiting for the symptom…") as spinner:

        def waiting(what: str, seconds: float) -> None:
            spinner.update(
                f"Waiting for the symptom ({what}): {clock(seconds)} of at most {clock(bound)}"
            )

        round_ = oncall.await_symptom(round_, bound, on_wait=waiting)
    symptom = round_.symptom
    assert symptom is not None
    if symptom.visible:
        err.print(f"Symptom visible after {clock(symptom.seconds)}: {symptom.what}.")
    else:
        err.print(
            f"[yellow]Symptom not yet visible[/] after {clock(symptom.seconds)} ({symptom.what} "
            "is not observed yet); paging anyway, and the page says so.",
            highlight=False,
        )
    show_page(oncall, round_)
    done(
        "The clock runs. `mlops-lab oncall check` when you think it is fixed (some incidents "
        'also want the cause: `mlops-lab oncall answer cause="..."`); `mlops-lab oncall hint` '
        "if you are stuck; `mlops-lab oncall status` shows the page again."
    )


@app.command()
def status() -> None:
    """The page again, how long the incident has been running, how many hints you took and
    whether the reference fix was applied."""
    oncall = _oncall()
    round_ = oncall.current()
    if round_ is None:
        done("No on-call round is running. `mlops-lab oncall start` pages you.")
        return
    show_page(oncall, round_)
    assisted = " (assisted: the reference fix was applied)" if oncall.assisted(round_) else ""
    done(
        f"On call for {clock(round_.elapsed_s)}, {oncall.hints_used(round_)} hints used"
        f"{assisted}. `mlops-lab oncall check` when it is fixed."
    )


@app.command()
def answer(
    answers: Annotated[
        list[str], typer.Argument(help='KEY=VALUE pairs, e.g. cause="what you found at fault"')
    ],
) -> None:
    """Report what you found (the cause), without naming the incident."""
    from mlops_lab.cli.lab import parse_answers

    pairs = parse_answers(answers)
    _oncall().answer(pairs)
    done(f"Recorded: {', '.join(f'{k}={v}' for k, v in pairs.items())}.")


@app.command()
def solve() -> None:
    """Apply the reference fix, without naming the incident. The round is then assisted: its
    check reports it so, not as your mitigation."""
    _oncall().solve()
    done(
        "Reference fix applied; this round is marked assisted. `mlops-lab oncall check` "
        "verifies it."
    )


@app.command()
def hint() -> None:
    """The next hint for the incident (they are counted), without naming it."""
    tier, tiers, text = _oncall().hint()
    out.print(f"[bold]Hint {tier}/{tiers}[/]: {text}", highlight=False)
    done(f"{tier} of {tiers} hints used on this incident.")


@app.command()
def check(
    wait: Wait = 30.0,
    why: Why = False,
    as_json: Annotated[bool, typer.Option("--json", help="The conditions as JSON.")] = False,
) -> None:
    """Check the fix (read-only): each condition, OK or NO. Solved: the lab is named, with
    your time, your hints and whether the reference fix was applied."""
    oncall = _oncall()
    round_ = oncall.require_current()
    report = checking(
        "the incident", lambda pending: oncall.check(wait_s=wait, on_pending=pending, why=why)
    )
    hints = oncall.hints_used(round_)
    assisted = oncall.assisted(round_)
    if as_json:
        # The labs' ids only in a passing report: the outcome statements give nothing away.
        document = {
            "passed": report.passed,
            "conditions": conditions_json(report.conditions, why),
        }
        if report.passed:
            document["lab"] = round_.lab.id
            if round_.second is not None:
                document["labs"] = [lab.id for lab in round_.labs]
            document["assisted"] = assisted
        out.print_json(json.dumps(document))
    print_conditions(report.conditions, why)
    if not report.passed:
        failed = sum(not c.passed for c in report.conditions)
        also = "" if why else "; `mlops-lab oncall check --why` to see why (it counts as one)"
        raise PlatformError(
            f"Not fixed yet: {failed} of {len(report.conditions)} conditions fail, "
            f"{clock(round_.elapsed_s)} after the page, {hints} hints used.",
            hint=f"`mlops-lab oncall hint` for a hint{also}; `mlops-lab oncall giveup` to end "
            "the round.",
        )
    solved_at = max(oncall.engine.store.get(lab.id).solved_at or time.time() for lab in round_.labs)
    took = clock(round_.seconds_to(solved_at))
    _reveal(oncall, round_)
    if assisted:
        outcome = (
            f"Incident closed by the reference fix {took} after the page, with {hints} hints: "
            "assisted, not a mitigation of yours."
        )
    else:
        outcome = f"Incident over {took} after the page, with {hints} hints."
    ids = " and ".join(lab.id for lab in round_.labs)
    done(
        f"{outcome} Write it up: `mlops-lab postmortem {round_.lab.id}`; then read the debrief: "
        f"`mlops-lab lab debrief {round_.lab.id}`" + (f" (and {ids})." if round_.second else ".")
    )


def _reveal(oncall, round_) -> None:
    """Which labs the round was, each with the variant to replay it; an expert round's red
    herring named."""
    from mlops_lab.interview.oncall import DECOY_ALERT

    for lab in round_.labs:
        err.print(f"[bold]It was lab {lab.id}: {lab.title}[/]", highlight=False)
        state = oncall.engine.store.get(lab.id).state
        if variant := replay_line(lab, state, command="mlops-lab lab start"):
            err.print(variant, highlight=False)
    if round_.second is not None:
        err.print(
            f"{DECOY_ALERT} was a red herring: a capacity forecast nobody updated, no fault.",
            highlight=False,
        )


@app.command()
def giveup() -> None:
    """End the round: names the lab and puts the platform back in its golden state."""
    oncall = _oncall()
    with err.status("Putting the platform back…"):
        round_ = oncall.giveup()
    _reveal(oncall, round_)
    lab = round_.lab
    done(
        f"Round over after {clock(round_.elapsed_s)}; the platform is back in its golden state. "
        f"Read the incident: {lab.readme_shown}; try it again: `mlops-lab lab start {lab.id}`."
    )
