"""Feature transforms before the model: parsed strictly, applied to a copy, nulls kept."""

from __future__ import annotations

import math

import pytest

from serving import transforms


def test_transforms_apply_to_a_copy_and_keep_nulls() -> None:
    parsed = transforms.parse("annual_income:log1p, home_ownership:lower,loan_amount:x0.5")
    records = [
        {"annual_income": 99.0, "home_ownership": "RENT", "loan_amount": 10.0},
        {"annual_income": None, "home_ownership": None, "loan_amount": None},
    ]

    out = transforms.apply(parsed, records)

    assert out[0] == {
        "annual_income": pytest.approx(math.log(100.0)),
        "home_ownership": "rent",
        "loan_amount": 5.0,
    }
    assert out[1] == records[1]
    assert records[0]["home_ownership"] == "RENT"
    assert (
        transforms.describe(parsed) == "annual_income:log1p, home_ownership:lower, loan_amount:x0.5"
    )


def test_no_transforms_is_the_default_and_changes_nothing() -> None:
    records = [{"age": 30.0}]

    assert transforms.parse("") == []
    assert transforms.apply([], records) is records


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("annual_income", "is not feature:transform"),
        ("annual_income:cube", "unknown transform 'cube'"),
        ("annual_income:xten", "x must be followed by a number"),
    ],
)
def test_a_bad_spec_is_named(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        transforms.parse(spec)
