"""The units the front end sends features in: the model's own by default; each other unit is the
client's mistake it names, a missing value stays missing, and a file written before `units`
(with `income_unit`) still reads."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest
from pydantic import ValidationError

from mlops_lab.front_end import config as front_end_config
from mlops_lab.front_end.__main__ import as_sent
from mlops_lab.front_end.config import CONVERSIONS, FrontEndConfig, Units
from platform_core.errors import PlatformError

RECORD = {"age": 41, "annual_income": 52_345.67, "loan_term_months": 36, "debt_to_income": 0.287}


def test_every_feature_is_sent_in_the_models_unit_by_default() -> None:
    assert as_sent(RECORD, FrontEndConfig()) == RECORD


@pytest.mark.parametrize(
    ("units", "sent"),
    [
        ({"annual_income": "thousands"}, {"annual_income": 52.346}),
        ({"annual_income": "monthly"}, {"annual_income": 4362.14}),
        ({"loan_term_months": "years"}, {"loan_term_months": 3.0}),
        (
            {"annual_income": "thousands", "loan_term_months": "years"},
            {"annual_income": 52.346, "loan_term_months": 3.0},
        ),
    ],
    ids=["income in thousands", "income a month", "term in years", "both"],
)
def test_a_feature_is_sent_in_the_unit_its_setting_names_and_the_rest_as_they_are(
    units: dict[str, str], sent: dict[str, float]
) -> None:
    config = FrontEndConfig(units=Units.model_validate(units))

    assert as_sent(RECORD, config) == {**RECORD, **sent}


def test_every_unit_but_the_models_own_has_a_conversion() -> None:
    for feature, field in Units.model_fields.items():
        own, *others = get_args(field.annotation)
        assert field.default == own
        assert {(feature, unit) for unit in others} <= set(CONVERSIONS), feature
    assert {feature for feature, _ in CONVERSIONS} <= set(Units.model_fields)


def test_a_missing_value_stays_missing_in_any_unit() -> None:
    config = FrontEndConfig(units=Units(annual_income="thousands", loan_term_months="years"))
    record = {**RECORD, "annual_income": None, "loan_term_months": None}

    assert as_sent(record, config) == record


def test_a_unit_a_feature_cannot_be_sent_in_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "front-end.yaml"
    path.write_text("units:\n  loan_term_months: weeks\n")

    with pytest.raises(PlatformError, match="loan_term_months"):
        front_end_config.read(path)


def test_a_unit_for_a_feature_without_the_setting_is_refused_naming_it() -> None:
    with pytest.raises(ValidationError, match="credit_score"):
        Units.model_validate({"credit_score": "percent"})


def test_the_units_written_to_the_file_are_read_back(tmp_path: Path) -> None:
    path = tmp_path / "front-end.yaml"
    front_end_config.write(path, FrontEndConfig(units=Units(loan_term_months="years")))

    assert front_end_config.read(path).units == Units(loan_term_months="years")
    assert "units:\n  annual_income: dollars\n  loan_term_months: years\n" in path.read_text()


def test_a_file_with_the_income_unit_setting_of_earlier_releases_still_reads(
    tmp_path: Path,
) -> None:
    path = tmp_path / "front-end.yaml"
    path.write_text("rate_per_s: 7\nincome_unit: thousands\n")

    assert front_end_config.read(path).units == Units(annual_income="thousands")
    # Beside `units`, which says the same more precisely, `units` wins.
    path.write_text("income_unit: thousands\nunits:\n  annual_income: monthly\n")
    assert front_end_config.read(path).units == Units(annual_income="monthly")
