"""Leitner boxes: moves and due dates, with the clock passed in."""

from __future__ import annotations

import datetime as dt

from mlops_lab.interview.schedule import DAY_S, INTERVAL_DAYS, Card, due_by_day, due_order, review

NOW = dt.datetime(2026, 11, 23, 12, 0).timestamp()


def test_a_new_card_is_in_box_1_and_due_at_once():
    assert Card().box == 1
    assert Card().is_due(NOW)


def test_got_it_moves_up_one_box_and_sets_the_due_date_of_that_box():
    card = Card()
    for expected_box in (2, 3, 4, 5):
        card = review(card, got_it=True, now=NOW)
        assert card.box == expected_box
        assert card.due == NOW + INTERVAL_DAYS[expected_box] * DAY_S
    assert INTERVAL_DAYS == {1: 0, 2: 1, 3: 2, 4: 4, 5: 8}


def test_got_it_in_the_top_box_stays_there_and_comes_back_in_8_days():
    card = review(Card(box=5, due=NOW), got_it=True, now=NOW)
    assert card.box == 5
    assert card.due == NOW + 8 * DAY_S


def test_again_sends_the_card_back_to_box_1_due_at_once_and_counts_a_lapse():
    card = review(Card(box=4, due=NOW, reviews=3), got_it=False, now=NOW)
    assert (card.box, card.due, card.reviews, card.lapses) == (1, NOW, 4, 1)
    assert card.is_due(NOW)


def test_a_card_is_not_due_before_its_day_and_is_due_after():
    card = review(Card(), got_it=True, now=NOW)
    assert not card.is_due(NOW + DAY_S - 1)
    assert card.is_due(NOW + DAY_S)


def test_due_order_asks_the_weakest_box_first_then_the_most_overdue_then_bank_order():
    cards = [
        (0, Card(box=3, due=NOW - 10)),
        (1, Card(box=1, due=NOW - 5)),
        (2, Card(box=1, due=NOW - 50)),
        (3, Card(box=2, due=NOW + DAY_S)),  # not due
        (4, Card()),
        (5, Card()),
    ]
    assert due_order(cards, NOW) == [4, 5, 2, 1, 0]


def test_due_by_day_counts_overdue_as_today_and_skips_beyond_the_horizon():
    cards = [
        Card(),
        Card(box=2, due=NOW - 3 * DAY_S),
        Card(box=2, due=NOW + DAY_S),
        Card(box=3, due=NOW + DAY_S + 60),
        Card(box=5, due=NOW + 30 * DAY_S),
    ]
    today = dt.date(2026, 11, 23)
    assert due_by_day(cards, NOW) == [(today, 2), (today + dt.timedelta(days=1), 2)]


def test_a_graded_review_keeps_the_coverage_of_that_answer():
    card = review(Card(), got_it=False, now=NOW, coverage=(2, 5))
    assert (card.covered, card.points) == (2, 5)
    card = review(card, got_it=True, now=NOW, coverage=(5, 5))
    assert (card.box, card.covered, card.points) == (2, 5, 5)


def test_a_new_card_has_no_coverage():
    assert (Card().covered, Card().points) == (None, None)
