"""Grading an answer against its key points: the replies the drill accepts and the verdict."""

from __future__ import annotations

import pytest

from mlops_lab.interview.grading import got_it, parse_covered


@pytest.mark.parametrize(
    ("reply", "covered"),
    [
        ("1 3", {1, 3}),
        ("1,3", {1, 3}),
        (" 3, 1 3 ", {1, 3}),
        ("all", {1, 2, 3, 4}),
        ("ALL", {1, 2, 3, 4}),
        ("", set()),
        ("none", set()),
    ],
)
def test_a_reply_names_the_points_covered_by_number_all_or_none(reply, covered):
    assert parse_covered(reply, points=4) == covered


@pytest.mark.parametrize("reply", ["g", "a", "maybe", "1-3", "2.5", "-1", "½"])
def test_a_reply_that_is_not_numbers_says_what_to_type(reply):
    with pytest.raises(
        ValueError, match=r"Type the numbers of the points you covered \(from 1 to 4"
    ):
        parse_covered(reply, points=4)


@pytest.mark.parametrize(("reply", "named"), [("0", 0), ("5", 5), ("2 9 7", 7)])
def test_a_number_outside_the_list_names_it_and_the_range(reply, named):
    with pytest.raises(ValueError, match=rf"There is no point {named}: they are numbered 1 to 4"):
        parse_covered(reply, points=4)


def test_the_verdict_is_got_it_only_when_every_point_is_covered():
    assert got_it(4, 4)
    assert not got_it(3, 4)
    assert not got_it(0, 3)
