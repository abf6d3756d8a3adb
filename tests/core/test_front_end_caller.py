"""How the simulated front end names itself to serving: a fixed name by default; a name that
quotes the request (as a careless release would) changes with every request."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mlops_lab.front_end.__main__ import applicant_key, caller_of
from mlops_lab.front_end.config import FrontEndConfig

RECORD = {"age": 41, "annual_income": 52_000.0}


def test_the_front_end_sends_a_fixed_name_by_default() -> None:
    config = FrontEndConfig()

    assert {caller_of(config, RECORD) for _ in range(3)} == {"loan-front-end"}


def test_a_name_quoting_the_request_changes_with_every_request() -> None:
    config = FrontEndConfig(caller="loan-front-end/{request_id}")

    assert len({caller_of(config, RECORD) for _ in range(100)}) == 100


def test_a_name_may_quote_the_applicant() -> None:
    config = FrontEndConfig(caller="loan-front-end/applicant-{applicant_id}")

    assert caller_of(config, RECORD) == f"loan-front-end/applicant-{applicant_key(RECORD)}"


def test_a_name_quoting_anything_else_is_refused() -> None:
    with pytest.raises(ValidationError, match="may quote only"):
        FrontEndConfig(caller="loan-front-end/{user}")
