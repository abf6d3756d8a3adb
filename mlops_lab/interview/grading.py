"""Grading an answer against its question's key points.

After the model answer, the drill lists the key points, numbered, and the learner says which of
them their answer covered. The verdict follows from that: every point covered is "got it" (the
card moves up a box), anything less is "again" (back to box 1). There is no override: a key point
is what a strong answer must cover, so the learner judges each point rather than the answer as a
whole, and a point missed is exactly what the next drill should ask again. The coverage itself is
kept on the card, so `interview list` shows how close each topic is.
"""

from __future__ import annotations

import re

_NUMBER = re.compile(r"[0-9]+")


def parse_covered(reply: str, points: int) -> frozenset[int]:
    """The point numbers (from 1) a reply names: numbers separated by spaces or commas, ``all``,
    or nothing (or ``none``) for none. A ValueError says what is wrong with any other reply."""
    text = reply.strip().lower()
    if text == "all":
        return frozenset(range(1, points + 1))
    if text in ("", "none"):
        return frozenset()
    words = text.replace(",", " ").split()
    if not all(_NUMBER.fullmatch(word) for word in words):
        raise ValueError(
            f"Type the numbers of the points you covered (from 1 to {points}, like 1 3), "
            "'all', or Enter for none"
        )
    numbers = {int(word) for word in words}
    outside = sorted(number for number in numbers if not 1 <= number <= points)
    if outside:
        raise ValueError(f"There is no point {outside[0]}: they are numbered 1 to {points}")
    return frozenset(numbers)


def got_it(covered: int, points: int) -> bool:
    """The verdict: every key point covered."""
    return covered >= points
