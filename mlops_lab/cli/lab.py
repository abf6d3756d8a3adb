"""`mlops-lab lab ...`: start a lab, get hints, check your fix, read the debrief."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich import box
from rich.markdown import Markdown
from rich.table import Table

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
from platform_core.errors import PlatformError
from platform_core.settings import get_settings

app = typer.Typer(help="Break the platform on purpose, find out why, fix it.")

LabId = Annotated[str, typer.Argument(help="The lab's number, e.g. 02.")]


def _engine():
    from mlops_lab.lab_engine.engine import Engine

    return Engine(get_settings(), console=err)


def _lab(lab_id: str):
    from mlops_lab.lab_engine.catalog import find

    return find(lab_id)


@app.command("list")
def list_labs(
    as_json: Annotated[bool, typer.Option("--json", help="A JSON list on stdout.")] = False,
) -> None:
    """Every lab: id, title, runtime, difficulty, estimated minutes, variants and your status."""
    rows = _engine().listing()
    if as_json:
        out.print_json(json.dumps(rows))
        return
    # Short headers: the table fits an 80-column terminal with most titles on one line.
    table = Table("Lab", "Title", "Runtime", "Level", "Min", "Variants", "Status", box=box.SIMPLE)
    for row in rows:
        table.add_row(
            row["id"],
            row["title"].split(":")[0],
            row["runtime"],
            row["difficulty"],
            str(row["minutes"]),
            str(row["variants"]),
            _status(row["status"]),
        )
    out.print(table)
    solved = sum(row["status"] == "solved" for row in rows)
    done(f"{len(rows)} labs, {solved} solved. Start one with `mlops-lab lab start ID`.")


def _status(status: str, assisted: bool = False) -> str:
    shown = {"solved": "[green]solved[/]", "in progress": "[yellow]in progress[/]"}.get(
        status, status
    )
    return f"{shown} (assisted)" if assisted and status != "not started" else shown


def starting(lab) -> str:
    """What `lab start` prints before the lab breaks the platform."""
    return f"Starting lab {lab.id}: {lab.title}"


def started(lab, started_at: float | None) -> list[str]:
    """What `lab start` prints once the platform is broken: where the brief is, then the result
    line. Kept apart from the command so a test can read it for spoilers without a platform."""
    since = time.strftime("%H:%M:%S", time.localtime(started_at))
    return [
        f"Read the incident: {lab.readme_shown}",
        f"Lab {lab.id} in progress since {since}. "
        f"`mlops-lab lab check {lab.id}` when you think it is fixed; `mlops-lab lab hint {lab.id}` "
        "if you are stuck.",
    ]


@app.command()
def start(
    lab_id: LabId,
    seed: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Draw the incident's variant from this seed (shown after the solve), to replay "
            "one; without it a seed is drawn at random.",
        ),
    ] = None,
) -> None:
    """Break the running platform the way this lab's incident did; prints the symptoms."""
    lab = _lab(lab_id)
    engine = _engine()
    engine.refuse_during_round()
    err.print(starting(lab), highlight=False)
    progress = engine.start(lab, seed=seed)
    *lines, result = started(lab, progress.started_at)
    for line in lines:
        err.print(line, highlight=False)
    done(result)


@app.command()
def hint(lab_id: LabId) -> None:
    """The next hint: from a nudge to nearly the command, looking at what is wrong now."""
    lab = _lab(lab_id)
    engine = _engine()
    tier, tiers, text = engine.hint(lab)
    out.print(f"[bold]Hint {tier}/{tiers}[/]: {text}", highlight=False)
    used = engine.store.get(lab.id).hints_used
    done(f"Hint {tier} of {tiers} for lab {lab.id}; {used} hints used in all.")


@app.command()
def check(
    lab_id: LabId,
    wait: Wait = 30.0,
    why: Why = False,
    as_json: Annotated[bool, typer.Option("--json", help="The conditions as JSON.")] = False,
) -> None:
    """Check the fix (read-only): each condition, OK or NO. Exit 0 only when solved."""
    lab = _lab(lab_id)
    engine = _engine()
    report = checking(
        f"lab {lab.id}", lambda pending: engine.check(lab, wait_s=wait, on_pending=pending, why=why)
    )
    if as_json:
        out.print_json(
            json.dumps(
                {
                    "lab": lab.id,
                    "passed": report.passed,
                    "conditions": conditions_json(report.conditions, why),
                }
            )
        )
    print_conditions(report.conditions, why)
    progress = engine.store.get(lab.id)
    if not report.passed:
        failed = sum(not c.passed for c in report.conditions)
        next_step = f"`mlops-lab lab hint {lab.id}` for a hint"
        if not why:
            next_step += f", or `mlops-lab lab check {lab.id} --why` to see why (it counts as one)"
        raise PlatformError(
            f"Lab {lab.id} is not solved yet: {failed} of {len(report.conditions)} conditions "
            f"fail; {progress.hints_used} hints used.",
            hint=next_step + ".",
        )
    minutes = (progress.seconds_to_solve or 0) / 60
    how = " with the reference fix (assisted)" if progress.assisted else ""
    variant = replay_line(lab, progress.state)
    if variant:
        err.print(variant, highlight=False)
    done(
        f"Lab {lab.id} solved{how} in {minutes:.1f} min with {progress.hints_used} hints. Read "
        f"the debrief: `mlops-lab lab debrief {lab.id}`."
    )


def replay_line(lab, state: dict, command: str = "mlops-lab lab start") -> str:
    """After a solve, which variant it was and how to meet it again ("" for a lab with one)."""
    from mlops_lab.lab_engine.kit import SEED, VARIANT

    if len(lab.variants) < 2 or SEED not in state:
        return ""
    return (
        f"Variant {state.get(VARIANT)} of {len(lab.variants)}, seed {state[SEED]}: "
        f"`{command} {lab.id} --seed {state[SEED]}` meets it again; another seed, another "
        "variant."
    )


@app.command()
def answer(
    lab_id: LabId,
    answers: Annotated[list[str], typer.Argument(help="KEY=VALUE pairs, e.g. version=3 rate=4.8")],
) -> None:
    """Report what you found, for labs that ask a question (a figure, or the cause)."""
    pairs = parse_answers(answers)
    lab = _lab(lab_id)
    _engine().answer(lab, pairs)
    done(f"Recorded for lab {lab.id}: {', '.join(f'{k}={v}' for k, v in pairs.items())}.")


def parse_answers(answers: list[str]) -> dict[str, str]:
    """KEY=VALUE words as a mapping, or a clear error naming the one that is not."""
    pairs = {}
    for item in answers:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise PlatformError(
                f"{item!r} is not KEY=VALUE.",
                hint='For example: version=3 rate=4.8, or cause="what you found at fault"',
            )
        pairs[key.strip()] = value.strip()
    return pairs


@app.command()
def solve(lab_id: LabId) -> None:
    """Apply the reference fix (what CI uses to prove each lab solvable); the attempt is then
    marked assisted."""
    lab = _lab(lab_id)
    _engine().solve(lab)
    done(
        f"Reference fix applied to lab {lab.id}; this attempt is marked assisted. "
        f"`mlops-lab lab check {lab.id}` verifies it."
    )


@app.command()
def reset(lab_id: LabId) -> None:
    """Put the platform back in its golden state, from any state of the lab."""
    lab = _lab(lab_id)
    with err.status(f"Resetting lab {lab.id}…"):
        _engine().reset(lab)
    done(f"Platform back to its golden state; lab {lab.id} reset (your progress is kept).")


@app.command()
def debrief(
    lab_id: LabId,
    spoil: Annotated[bool, typer.Option(help="Show it before solving the lab.")] = False,
) -> None:
    """Root cause, detection, prevention and interview questions; opens after a solve."""
    lab = _lab(lab_id)
    out.print(Markdown(_engine().debrief(lab, spoil=spoil)))
    done(f"Debrief of lab {lab.id}.")


@app.command()
def status() -> None:
    """Your progress: status (assisted when the reference fix was applied), how started (lab or
    on call), hints used, check attempts and time to solve, per lab."""
    rows = _engine().status_rows()
    table = Table(
        "Lab", "Title", "Status", "Via", "Hints", "Attempts", "Time to solve", box=box.SIMPLE
    )
    for lab, progress in rows:
        seconds = progress.seconds_to_solve
        started = progress.started_at is not None
        table.add_row(
            lab.id,
            lab.title,
            _status(progress.status, progress.assisted),
            ("on-call" if progress.mode == "oncall" else "lab") if started else "-",
            str(progress.hints_used),
            str(progress.attempts),
            f"{seconds / 60:.1f} min" if seconds else "-",
        )
    out.print(table)
    solved = sum(p.status == "solved" for _, p in rows)
    done(f"{solved}/{len(rows)} labs solved. Progress is kept in {get_settings().learner_home}.")
