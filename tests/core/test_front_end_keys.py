"""The simulated front end names the applicant, so a canary keeps each one on one version."""

from __future__ import annotations

from mlops_lab.front_end.__main__ import applicant_key

RECORD = {"age": 41, "annual_income": 52_000.0, "num_open_accounts": 3, "employment": "salaried"}


def test_the_same_application_has_the_same_key_however_its_fields_are_ordered() -> None:
    assert applicant_key(dict(RECORD)) == applicant_key(dict(reversed(RECORD.items())))


def test_different_applicants_have_different_keys() -> None:
    assert applicant_key(RECORD) != applicant_key({**RECORD, "age": 42})
