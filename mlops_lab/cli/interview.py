"""`mlops-lab interview ...`: drill the interview questions of every lab and design walkthrough
with spaced repetition (Leitner boxes), and see what is due."""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from typing import Annotated

import typer
from rich import box
from rich.markdown import Markdown
from rich.table import Table
from rich.text import Text

from mlops_lab.cli.output import done, out
from mlops_lab.interview.bank import Question, carry_over, load_bank, select
from mlops_lab.interview.grading import got_it, parse_covered
from mlops_lab.interview.schedule import INTERVAL_DAYS, Card, due_by_day, due_order, review
from mlops_lab.interview.store import DrillStore, learner_home
from platform_core.errors import PlatformError
from platform_core.settings import REPO_ROOT, get_settings

app = typer.Typer(help="Practise interview questions with spaced repetition.", no_args_is_help=True)

Topic = Annotated[
    str | None,
    typer.Option("--topic", "-t", help="A topic or its prefix (e.g. lab-02, lab, monitoring)."),
]


def _store() -> DrillStore:
    return DrillStore(learner_home(get_settings()))


def _solved_labs() -> set[str]:
    """The labs this learner has solved at least once: their debriefs' questions are open."""
    from mlops_lab.lab_engine.progress import SOLVED, ProgressStore

    progress = ProgressStore(learner_home(get_settings())).load()
    return {lab_id for lab_id, p in progress.items() if p.solves or p.status == SOLVED}


def _open(bank: list[Question], topic: str | None) -> list[Question]:
    """The questions a drill may ask: a lab's wait until the lab is solved, since their model
    answers name its cause."""
    solved = _solved_labs()
    unlocked = [q for q in bank if not q.locked(solved)]
    if bank and not unlocked:
        labs = sorted({q.lab for q in bank if q.lab})
        raise PlatformError(
            f"The questions of {topic or 'these topics'} open once you solve lab "
            f"{', '.join(labs)}: their model answers give the incident away.",
            hint=f"`mlops-lab lab start {labs[0]}` first, or drill another topic.",
        )
    return unlocked


def _cards(store: DrillStore) -> dict[str, Card]:
    cards = store.load()  # a file that cannot be read is set aside, with a warning
    if carry_over(cards, load_bank()):
        store.save(cards)
    return cards


@app.command("list")
def list_topics(
    as_json: Annotated[bool, typer.Option("--json", help="A JSON list on stdout.")] = False,
) -> None:
    """Every topic: how many questions it has, how many are due now, and how many of their key
    points the last graded answers covered."""
    bank = load_bank()
    listing = _topic_rows(bank, _cards(_store()), _solved_labs(), time.time())
    due = sum(row["due"] for row in listing)
    if as_json:
        out.print_json(json.dumps(listing))
    else:
        out.print(_topic_table(listing))
    done(
        f"{len(bank)} questions in {len(listing)} topics, {due} due now. "
        "`mlops-lab interview drill [--topic T]` to practise."
    )


def _topic_rows(
    bank: list[Question], cards: dict[str, Card], solved: set[str], now: float
) -> list[dict]:
    """One row per topic; ``coverage`` sums the last graded answer of each question graded so
    far (None before the first)."""
    rows: dict[str, dict] = {}
    for question in bank:
        locked = question.locked(solved)
        row = rows.setdefault(
            question.topic,
            {
                "topic": question.topic,
                "questions": 0,
                "due": 0,
                "source": _source(question),
                "locked": locked,
                "coverage": None,
            },
        )
        card = cards.get(question.id, Card())
        row["questions"] += 1
        row["due"] += not locked and card.is_due(now)
        if card.covered is not None and card.points is not None:
            if row["coverage"] is None:
                row["coverage"] = {"graded": 0, "covered": 0, "points": 0}
            coverage = row["coverage"]
            coverage["graded"] += 1
            coverage["covered"] += card.covered
            coverage["points"] += card.points
    return list(rows.values())


def _topic_table(listing: list[dict]) -> Table:
    headings = ("Topic", "Questions", "Due now", "Covered")
    cells = [
        (
            row["topic"],
            str(row["questions"]),
            "after its lab" if row["locked"] else str(row["due"]),
            f"{row['coverage']['covered']} of {row['coverage']['points']}"
            if row["coverage"]
            else "-",
        )
        for row in listing
    ]
    table = Table(box=box.SIMPLE)
    for column, heading in enumerate(headings):
        # Whole however narrow the terminal: the source path is what gets cut.
        width = max(len(heading), *(len(cell[column]) for cell in cells))
        table.add_column(heading, min_width=width)
    table.add_column("Source", no_wrap=True, overflow="ellipsis")
    for row, cell in zip(listing, cells, strict=True):
        table.add_row(*cell, row["source"])
    return table


def _source(question: Question) -> str:
    try:
        return str(question.source.relative_to(REPO_ROOT))
    except ValueError:
        return str(question.source)


@app.command()
def drill(
    topic: Topic = None,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", min=1, help="At most this many questions.")
    ] = None,
) -> None:
    """Ask the due questions one by one: Enter shows the model answer and its key points, then
    say which points you covered (all of them: got it; fewer: again) or q to stop. Each answer
    is saved at once."""
    chosen = select(load_bank(), topic)
    bank = _open(chosen, topic)
    held_back = len(chosen) - len(bank)
    store = _store()
    cards = _cards(store)
    order = due_order([(i, cards.get(q.id, Card())) for i, q in enumerate(bank)], time.time())
    if limit is not None:
        order = order[:limit]
    scope = f"topic {topic!r}" if topic else "all topics"
    if not order:
        _print_due_next(bank, cards)
        done(f"Nothing is due in {scope}. Come back on the first day above.")
        return

    out.print(
        f"{len(order)} question(s) due in {scope}. Answer aloud first, then press Enter.",
        highlight=False,
    )
    if held_back:
        out.print(
            f"({held_back} questions of labs you have not solved wait until you solve them.)",
            highlight=False,
        )
    tally = {"got it": 0, "again": 0, "covered": 0, "points": 0}
    stopped_by: int | None = None
    reason = ""
    for number, index in enumerate(order, 1):
        question = bank[index]
        card = cards.get(question.id, Card())
        out.rule(f"{number}/{len(order)} · {question.topic} · box {card.box}", style="dim")
        out.print(Text(question.question, style="bold"))
        reply = _ask("Enter shows the model answer (q stops) ")
        if reply in (None, "q"):
            stopped_by, reason = number, "no more input" if reply is None else "q"
            break
        out.print(Markdown(question.answer))
        covered, reason = _ask_covered(question.key_points)
        if covered is None:
            stopped_by = number
            break
        coverage = (len(covered), len(question.key_points))
        verdict = "got it" if got_it(*coverage) else "again"
        cards[question.id] = review(card, verdict == "got it", time.time(), coverage)
        # Saved after every answer: stopping or a crash never loses what was answered.
        store.save(cards)
        out.print(_graded(covered, len(question.key_points), verdict), highlight=False)
        tally[verdict] += 1
        tally["covered"] += coverage[0]
        tally["points"] += coverage[1]

    _print_due_next(bank, cards)
    reviewed = tally["got it"] + tally["again"]
    result = f"{reviewed} reviewed ({tally['got it']} got it, {tally['again']} again)"
    if reviewed:
        result += f", {tally['covered']} of {tally['points']} key points covered"
    saved = f"saved in {store.path}" if reviewed else "nothing changed"
    if stopped_by is not None:
        done(f"Stopped at question {stopped_by} of {len(order)} ({reason}): {result}; {saved}.")
    else:
        done(f"Drill done: {result}; saved in {store.path}.")


def _ask(prompt: str) -> str | None:
    """One line from stdin, lower-cased; None when stdin is closed (piped input ran out)."""
    out.print(prompt, end="", highlight=False, markup=False)
    try:
        line = sys.stdin.readline()
    except KeyboardInterrupt:
        line = ""
    if not line or not sys.stdin.isatty():
        # A terminal echoes the reply and its newline; piped input does not.
        out.print()
    return line.strip().lower() if line else None


def _ask_covered(points: tuple[str, ...]) -> tuple[frozenset[int] | None, str]:
    """List the key points and ask which the answer covered: (their numbers, ""), or
    (None, why) to stop: q, or no more input."""
    out.print(Text("\nKey points", style="bold"))
    listing = Table.grid(padding=(0, 1))
    listing.add_column(justify="right")
    listing.add_column()
    for n, point in enumerate(points, 1):
        listing.add_row(f"{n}.", Markdown(point))
    out.print(listing)
    while True:
        reply = _ask(
            f"Which did you cover? Their numbers (1 to {len(points)}), 'all', "
            "or Enter for none; q stops: "
        )
        if reply is None:
            return None, "no more input"
        if reply in ("q", "quit"):
            return None, "q"
        try:
            return parse_covered(reply, len(points)), ""
        except ValueError as error:
            out.print(f"{error}; q stops.", highlight=False)


def _graded(covered: frozenset[int], points: int, verdict: str) -> str:
    if verdict == "got it":
        return f"Covered all {points}: got it."
    missed = ", ".join(str(n) for n in range(1, points + 1) if n not in covered)
    return f"Covered {len(covered)} of {points} (missed {missed}): again."


def _print_due_next(bank: list[Question], cards: dict[str, Card]) -> None:
    now = time.time()
    days = due_by_day([cards.get(q.id, Card()) for q in bank], now)
    today = dt.datetime.fromtimestamp(now).date()
    parts = [
        f"{'today' if day == today else day.strftime('%a %d %b')}: {count}" for day, count in days
    ]
    horizon = max(INTERVAL_DAYS.values())
    out.print(
        f"Due next ({horizon} days): " + (", ".join(parts) if parts else "nothing"),
        highlight=False,
    )
