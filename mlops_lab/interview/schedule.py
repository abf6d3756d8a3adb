"""Leitner boxes: what to ask today.

Every card starts in box 1. "Got it" moves it up one box, "again" sends it back to box 1. A card
in box k is due ``INTERVAL_DAYS[k]`` days after its last review: box 1 at once (the next drill
asks it again), then 1, 2, 4 and 8 days. Box 5 is the top: a card you keep knowing comes back
every 8 days, so nothing is ever retired for good. Time is passed in (``now``, epoch seconds) so
tests can move the clock.

A card also keeps how much of the question's key points the last answer covered (``covered`` of
``points``), when that answer was graded against them.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

INTERVAL_DAYS = {1: 0, 2: 1, 3: 2, 4: 4, 5: 8}
TOP_BOX = max(INTERVAL_DAYS)
DAY_S = 86_400.0


@dataclass
class Card:
    """What the learner has shown about one question. A card never reviewed is due at once."""

    box: int = 1
    due: float = 0.0
    reviewed_at: float | None = None
    reviews: int = 0
    lapses: int = 0
    # The last graded answer: how many of the question's key points it covered, of how many.
    covered: int | None = None
    points: int | None = None

    def is_due(self, now: float) -> bool:
        return self.due <= now


def review(card: Card, got_it: bool, now: float, coverage: tuple[int, int] | None = None) -> Card:
    """The card after one answer: up a box on "got it", back to box 1 on "again". ``coverage``
    is (key points covered, key points in all) when the answer was graded against them."""
    box = min(card.box + 1, TOP_BOX) if got_it else 1
    covered, points = coverage if coverage is not None else (None, None)
    return Card(
        box=box,
        due=now + INTERVAL_DAYS[box] * DAY_S,
        reviewed_at=now,
        reviews=card.reviews + 1,
        lapses=card.lapses + (0 if got_it else 1),
        covered=covered,
        points=points,
    )


def due_order(cards: list[tuple[int, Card]], now: float) -> list[int]:
    """Indexes of the due cards: the weakest box first, then the longest overdue, then bank
    order (so new cards of one file come in the order they were written)."""
    due = [(card.box, card.due, index) for index, card in cards if card.is_due(now)]
    return [index for _, _, index in sorted(due)]


def due_by_day(cards: list[Card], now: float, days: int = 8) -> list[tuple[dt.date, int]]:
    """How many cards fall due on each of the next ``days`` local days (overdue counts as today);
    only days with something due are listed."""
    today = dt.datetime.fromtimestamp(now).date()
    counts: Counter[dt.date] = Counter()
    for card in cards:
        day = max(dt.datetime.fromtimestamp(card.due).date(), today) if card.due else today
        if (day - today).days < days:
            counts[day] += 1
    return sorted(counts.items())
