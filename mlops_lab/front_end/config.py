"""The front end's configuration: one small YAML file, re-read whenever it changes.

A learner fixes an upstream bug by editing this file, exactly as they would change a client's
configuration in production; the front end logs each reload and keeps the last valid
configuration when an edit does not parse.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal, NamedTuple, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from mlops_lab.front_end.outcomes import OutcomeJoin
from platform_core.errors import PlatformError
from platform_core.settings import Settings

Population = Literal[
    "baseline",
    "covariate_shift",
    "concept_drift",
    "concept_drift_rates",
    "concept_drift_age",
    "new_segment",
    "new_segment_young",
    "new_segment_retired",
]

_HEADER = """\
# The loan front end (a simulated client application of the platform).
# It sends loan applications to serving's POST /predict and, later, what became of them to
# POST /feedback. It re-reads this file within a second of every change.
#
#   rate_per_s        applications sent per second
#   population        who applies: baseline (the population the model was trained on), or a
#                     code a lab sets for another mix of applicants (what it is, is for you
#                     to find out from the traffic, as with any real client)
#   units             the unit it sends each of these features in:
#                       annual_income     dollars | thousands | monthly (dollars a month)
#                       loan_term_months  months | years
#   feedback_share    share of applications whose outcome is reported back (0..1)
#   feedback_delay_s  how long an outcome takes to be known, in seconds
#   outcome_join      which prediction the outcomes feed reports each outcome for:
#                     request_id (its own) | previous_request | reversed_batch | latest_request
#   seed              seed of the generated applicants
#   caller            how it names itself to serving (its X-Caller header); may hold
#                     {request_id}, {applicant_id} or {sent_at}, filled in for each request
#
# Each outcome it learns goes to its outcomes ledger too, the lender's system of record:
# front-end/outcomes.jsonl in the data dir (.lab/ by default), one JSON line per outcome with
# request_id, outcome, known_at and reported_for.
"""
# What a caller name may quote of the request it is sent with (see FrontEnd.caller_of).
CALLER_FIELDS = ("request_id", "applicant_id", "sent_at")


def population_code(population: str) -> str:
    """How the file, the front end's log and its /status show a population: `baseline` by its
    name, any other by an opaque code. They are the learner's to read while a lab runs, and a
    name such as `concept_drift` would say what the lab asks them to find out."""
    if population == "baseline":
        return population
    return "mix-" + hashlib.sha256(population.encode()).hexdigest()[:6]


_POPULATION_BY_CODE = {population_code(name): name for name in get_args(Population)}


class Units(BaseModel):
    """The unit the front end sends each of these features in. The first of each is the model's
    contract, the unit its training data has; the others are an upstream client's mistakes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    annual_income: Literal["dollars", "thousands", "monthly"] = "dollars"
    loan_term_months: Literal["months", "years"] = "months"


class Conversion(NamedTuple):
    """How a value in the contract's unit is written in another: divided by ``divisor``, then
    rounded to ``digits`` decimals."""

    divisor: float
    digits: int


# Every unit of `Units` but the contract's, by (feature, unit).
CONVERSIONS: dict[tuple[str, str], Conversion] = {
    ("annual_income", "thousands"): Conversion(1000.0, 3),
    ("annual_income", "monthly"): Conversion(12.0, 2),
    ("loan_term_months", "years"): Conversion(12.0, 2),
}


class FrontEndConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rate_per_s: float = Field(default=5.0, gt=0, le=200)
    population: Population = "baseline"
    units: Units = Units()
    feedback_share: float = Field(default=0.5, ge=0, le=1)
    feedback_delay_s: float = Field(default=0.0, ge=0, le=3600)
    outcome_join: OutcomeJoin = "request_id"
    seed: int = 7
    caller: str = Field(default="loan-front-end", min_length=1, max_length=200)

    @model_validator(mode="before")
    @classmethod
    def _income_unit(cls, data: Any) -> Any:
        """``income_unit``, the one unit setting before ``units``: a file an earlier release
        wrote still reads, as ``units: {annual_income: ...}`` (which wins when both are set)."""
        if not isinstance(data, dict) or "income_unit" not in data:
            return data
        data = dict(data)
        legacy = data.pop("income_unit")
        units = data.get("units")
        if units is None:
            data["units"] = {"annual_income": legacy}
        elif isinstance(units, dict):
            data["units"] = {"annual_income": legacy, **units}
        return data

    @field_validator("population", mode="before")
    @classmethod
    def _population_by_code(cls, value: Any) -> Any:
        """A code as the file shows it, or a population's own name (a file written by an
        earlier release, or by hand)."""
        return _POPULATION_BY_CODE.get(value, value) if isinstance(value, str) else value

    @field_serializer("population")
    def _population_as_code(self, population: str) -> str:
        return population_code(population)

    @field_validator("caller")
    @classmethod
    def _known_fields(cls, caller: str) -> str:
        try:
            caller.format(**dict.fromkeys(CALLER_FIELDS, ""))
        except (KeyError, IndexError, ValueError) as error:
            raise ValueError(
                f"caller may quote only {', '.join('{' + f + '}' for f in CALLER_FIELDS)} "
                f"({error!r})"
            ) from error
        return caller


def config_path(settings: Settings) -> Path:
    return settings.paths.config / "front-end.yaml"


def read(path: Path) -> FrontEndConfig:
    """The configuration in ``path`` (defaults when it does not exist), or a PlatformError naming
    what is wrong with it."""
    if not path.exists():
        return FrontEndConfig()
    try:
        document = yaml.safe_load(path.read_text()) or {}
        return FrontEndConfig.model_validate(document)
    except (yaml.YAMLError, ValidationError) as error:
        raise PlatformError(
            f"{path} is not a valid front-end configuration: {error}",
            hint="Fix the file; the front end keeps its last valid configuration meanwhile.",
        ) from error


def write(path: Path, config: FrontEndConfig) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = yaml.safe_dump(config.model_dump(), sort_keys=False)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(_HEADER + body)
    tmp.replace(path)
