"""A seeded generator of loan applications, with named drift scenarios.

The business problem: predict whether a loan will default from what the applicant tells us.
The label follows a believable logistic relationship to credit score, debt-to-income, loan size
relative to income, employment history, purpose and home ownership, so a model can learn it and
a drifted population can hurt it.

Scenarios are what later labs and the traffic generator replay:

- ``baseline``: the population the first model is trained on.
- ``covariate_shift``: a younger, lower-income, lower-score population; same risk mechanism.
- ``concept_drift``: same applicants, but the risk mechanism changes (a downturn: the score
  stops separating, many open credit lines and short tenure signal distress, defaults rise):
  invisible in the features, visible only once labels arrive (lab 08). Two more changes of the
  same kind: ``concept_drift_rates`` (rates rose: a mortgage and a long term, once the safer
  side, now the riskier: their effects reverse) and ``concept_drift_age`` (a repayment most
  applicants under 32 owe resumed, unseen in their declared debt: a step in risk at an age
  where there was a gentle slope).
- ``unit_bug``: an upstream change reports ``annual_income`` in thousands of dollars.
- ``missing_values``: a broken form leaves ``employment_years`` and ``debt_to_income`` empty.
- ``new_category``: a new ``loan_purpose`` value the model has never seen.
- ``new_segment``: a new product, 72- and 84-month loans, taken by a younger, lower-income
  population. The risk mechanism is the world's, the same as for everyone: but over six or seven
  years job stability and debt load decide, and the bureau score at application says little
  about year five. The old population never took a loan over 60 months, so a model fitted on it
  has never seen that region and extrapolates its old slopes into it (lab 07): a real shift
  that retraining on the new applicants fixes, unlike ``covariate_shift`` where the old model
  stays near-optimal. Two more segments of the same kind, each in a region the old population
  never reaches and with its own risk there: ``new_segment_young`` (first loans to applicants
  of 18 to 20: a thin file's score says little, the credit lines already open decide) and
  ``new_segment_retired`` (retirees of 76 to 90: risk rises with age where it fell, and a loan
  for medical bills is the riskiest).
- ``label_leak``: a training extract whose ``num_open_accounts`` also counts accounts opened by
  collections *after* a default: a feature that encodes the label (lab 04). Training data only;
  live traffic never knows the future.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

TARGET = "defaulted"


@dataclass(frozen=True)
class Feature:
    name: str
    kind: Literal["numeric", "categorical"]
    description: str


FEATURES: tuple[Feature, ...] = (
    Feature("age", "numeric", "Applicant age in years."),
    Feature("annual_income", "numeric", "Declared yearly income in US dollars."),
    Feature("loan_amount", "numeric", "Requested principal in US dollars."),
    Feature("loan_term_months", "numeric", "Repayment period in months (12 to 84)."),
    Feature("credit_score", "numeric", "Bureau score, 300 to 850."),
    Feature("debt_to_income", "numeric", "Monthly debt payments / monthly income (0 to 1)."),
    Feature("employment_years", "numeric", "Years with the current employer."),
    Feature("num_open_accounts", "numeric", "Open credit lines."),
    Feature("home_ownership", "categorical", "RENT, MORTGAGE or OWN."),
    Feature("loan_purpose", "categorical", "What the loan is for."),
)
FEATURE_NAMES = tuple(f.name for f in FEATURES)
NUMERIC_FEATURES = tuple(f.name for f in FEATURES if f.kind == "numeric")
CATEGORICAL_FEATURES = tuple(f.name for f in FEATURES if f.kind == "categorical")

HOME_OWNERSHIP = ("RENT", "MORTGAGE", "OWN")
LOAN_PURPOSES = (
    "debt_consolidation",
    "credit_card",
    "home_improvement",
    "car",
    "small_business",
    "medical",
)
NEW_PURPOSE = "crypto_investment"

SCENARIOS = (
    "baseline",
    "covariate_shift",
    "concept_drift",
    "unit_bug",
    "missing_values",
    "new_category",
    "label_leak",
    "new_segment",
    "new_segment_young",
    "new_segment_retired",
    "concept_drift_rates",
    "concept_drift_age",
)

# Which features a drift monitor should flag for each scenario (tests and lab checks use this).
DRIFTED_FEATURES: dict[str, frozenset[str]] = {
    "baseline": frozenset(),
    "covariate_shift": frozenset({"age", "annual_income", "credit_score"}),
    "concept_drift": frozenset(),
    "unit_bug": frozenset({"annual_income"}),
    "missing_values": frozenset({"employment_years", "debt_to_income"}),
    "new_category": frozenset({"loan_purpose"}),
    "label_leak": frozenset({"num_open_accounts"}),
    "new_segment": frozenset(
        {
            "age",
            "annual_income",
            "credit_score",
            "employment_years",
            "loan_amount",
            "loan_term_months",
        }
    ),
    "new_segment_young": frozenset(
        {"age", "annual_income", "employment_years", "loan_amount", "num_open_accounts"}
    ),
    "new_segment_retired": frozenset(
        {"age", "annual_income", "employment_years", "home_ownership", "loan_amount"}
    ),
    "concept_drift_rates": frozenset(),
    "concept_drift_age": frozenset(),
}

# The long-term product of ``new_segment``: terms the old population never had.
LONG_TERMS = (72, 84)


class UnknownScenario(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"Unknown scenario {name!r}. Choose one of: {', '.join(SCENARIOS)}.")


def generate(n_rows: int, scenario: str = "baseline", seed: int = 42) -> pd.DataFrame:
    """``n_rows`` applications with their ``defaulted`` label, the same for the same seed."""
    if scenario not in SCENARIOS:
        raise UnknownScenario(scenario)
    if n_rows < 1:
        raise ValueError(f"n_rows must be at least 1, got {n_rows}.")
    rng = np.random.default_rng(seed)
    frame = _applicants(rng, n_rows, shifted=scenario in ("covariate_shift", "new_segment"))
    segment = _SEGMENTS.get(scenario)
    if segment is not None:
        frame = segment(rng, frame)
    frame[TARGET] = _defaults(rng, frame, _WORLDS.get(scenario, _steady))
    # The remaining scenarios corrupt what the model sees, not what happens in the world:
    # labels above were drawn from the true values.
    if scenario == "unit_bug":
        frame["annual_income"] = (frame["annual_income"] / 1000.0).round(3)
    elif scenario == "missing_values":
        for column in ("employment_years", "debt_to_income"):
            frame.loc[rng.random(n_rows) < 0.35, column] = np.nan
    elif scenario == "new_category":
        frame.loc[rng.random(n_rows) < 0.3, "loan_purpose"] = NEW_PURPOSE
    elif scenario == "label_leak":
        defaulted = frame[TARGET] == 1
        frame.loc[defaulted, "num_open_accounts"] += 6 + rng.poisson(3, int(defaulted.sum()))
    return frame


def _applicants(rng: np.random.Generator, n: int, shifted: bool) -> pd.DataFrame:
    age = rng.normal(31 if shifted else 42, 9 if shifted else 11, n).clip(21, 75).round()
    income = rng.lognormal(np.log(38_000 if shifted else 62_000), 0.45, n).clip(12_000, 400_000)
    score_center = 630 if shifted else 690
    credit_score = rng.normal(score_center, 55, n).clip(300, 850).round()
    employment = rng.gamma(2.0, 2.2 if shifted else 3.5, n).clip(0, 40).round(1)
    term = rng.choice([12, 24, 36, 48, 60], n, p=[0.1, 0.2, 0.35, 0.15, 0.2])
    loan = (income * rng.uniform(0.05, 0.45, n)).clip(1_000, 60_000).round(-2)
    dti = rng.beta(2.2, 5.5, n).clip(0, 0.95).round(3)
    accounts = rng.poisson(7, n).clip(0, 40)
    ownership = rng.choice(HOME_OWNERSHIP, n, p=[0.6, 0.3, 0.1] if shifted else [0.4, 0.45, 0.15])
    purpose = rng.choice(LOAN_PURPOSES, n, p=[0.35, 0.2, 0.12, 0.15, 0.08, 0.1])
    return pd.DataFrame(
        {
            "age": age.astype(int),
            "annual_income": income.round(2),
            "loan_amount": loan,
            "loan_term_months": term.astype(int),
            "credit_score": credit_score.astype(int),
            "debt_to_income": dti,
            "employment_years": employment,
            "num_open_accounts": accounts.astype(int),
            "home_ownership": ownership,
            "loan_purpose": purpose,
        }
    )


def _long_term_loans(rng: np.random.Generator, frame: pd.DataFrame) -> pd.DataFrame:
    """The new product: every loan runs 72 or 84 months, and a longer term lets applicants
    borrow a larger share of their income. Drawn after the applicants, so the other scenarios'
    random streams (and outputs) stay exactly as they were."""
    n = len(frame)
    term = rng.choice(LONG_TERMS, n)
    loan = (frame["annual_income"] * rng.uniform(0.3, 0.9, n)).clip(1_000, 60_000).round(-2)
    return frame.assign(loan_term_months=term.astype(int), loan_amount=loan.to_numpy())


def _first_loans(rng: np.random.Generator, frame: pd.DataFrame) -> pd.DataFrame:
    """``new_segment_young``: first loans to applicants of 18 to 20 (the old population starts at
    21): student jobs and first jobs, small loans, a thin credit file of a few lines. Drawn after
    the applicants, as ``_long_term_loans``."""
    n = len(frame)
    income = rng.lognormal(np.log(24_000), 0.35, n).clip(12_000, 400_000)
    return frame.assign(
        age=rng.integers(18, 21, n),
        annual_income=income.round(2),
        employment_years=rng.gamma(1.2, 0.7, n).clip(0, 3).round(1),
        loan_amount=(income * rng.uniform(0.05, 0.3, n)).clip(1_000, 60_000).round(-2),
        num_open_accounts=rng.poisson(3, n).clip(0, 40),
    )


def _retirees(rng: np.random.Generator, frame: pd.DataFrame) -> pd.DataFrame:
    """``new_segment_retired``: loans to retirees of 76 to 90 (the old population ends at 75):
    pensions for incomes, no employer, mostly homeowners. Drawn after the applicants, as
    ``_long_term_loans``."""
    n = len(frame)
    income = rng.lognormal(np.log(34_000), 0.35, n).clip(12_000, 400_000)
    return frame.assign(
        age=rng.integers(76, 91, n),
        annual_income=income.round(2),
        employment_years=np.zeros(n),
        credit_score=rng.normal(700, 45, n).clip(300, 850).round().astype(int),
        loan_amount=(income * rng.uniform(0.05, 0.45, n)).clip(1_000, 60_000).round(-2),
        home_ownership=rng.choice(HOME_OWNERSHIP, n, p=[0.1, 0.2, 0.7]),
    )


_PURPOSE_RISK = {
    "debt_consolidation": 0.2,
    "credit_card": 0.1,
    "home_improvement": -0.2,
    "car": -0.3,
    "small_business": 0.6,
    "medical": 0.3,
}
_OWNERSHIP_RISK = {"RENT": 0.25, "MORTGAGE": -0.1, "OWN": -0.3}
_RATE_RISE_OWNERSHIP = {"RENT": -0.3, "MORTGAGE": 1.1, "OWN": -0.5}


def _defaults(
    rng: np.random.Generator, f: pd.DataFrame, world: Callable[[pd.DataFrame], pd.Series]
) -> np.ndarray:
    probability = 1.0 / (1.0 + np.exp(-world(f).to_numpy()))
    return (rng.random(len(f)) < probability).astype(int)


def _steady(f: pd.DataFrame) -> pd.Series:
    """The world every population but the concept drifts lives in: one risk mechanism, with
    terms for the regions only a new segment reaches (zero everywhere else)."""
    burden = np.log1p(f["loan_amount"] / f["annual_income"] * 12 / f["loan_term_months"] * 10)
    return (
        -1.9
        - 0.02 * (f["credit_score"] - 680)
        + 4.5 * (f["debt_to_income"] - 0.28)
        + 1.4 * burden
        - 0.08 * f["employment_years"]
        - 0.015 * (f["age"] - 40)
        + f["loan_purpose"].map(_PURPOSE_RISK).fillna(0.0)
        + f["home_ownership"].map(_OWNERSHIP_RISK).fillna(0.0)
        + _long_term_risk(f)
        + _first_loan_risk(f)
        + _retired_risk(f)
    )


def _downturn(f: pd.DataFrame) -> pd.Series:
    """``concept_drift``: scores stop separating good from bad borrowers, many open credit lines
    and short tenure now signal distress."""
    return (
        -0.9
        - 0.002 * (f["credit_score"] - 680)
        + 1.0 * (f["debt_to_income"] - 0.28)
        + 0.35 * (f["num_open_accounts"] - 7)
        + 0.12 * (4 - f["employment_years"])
    )


def _rate_rise(f: pd.DataFrame) -> pd.Series:
    """``concept_drift_rates``: rates rose and variable-rate debt repriced. A mortgage and a long
    term, which meant a lighter monthly burden and less risk, now mean more: their effects
    reverse, and the score at application says less."""
    return (
        -1.6
        - 0.004 * (f["credit_score"] - 680)
        + 1.5 * (f["debt_to_income"] - 0.28)
        + 0.06 * (f["loan_term_months"] - 36)
        + f["home_ownership"].map(_RATE_RISE_OWNERSHIP).fillna(0.0)
    )


def _repayments_resumed(f: pd.DataFrame) -> pd.Series:
    """``concept_drift_age``: a payment most applicants under 32 owe (student loans) resumed, and
    the declared debt-to-income leaves it out: a step in risk at 32, where there was a gentle
    slope; the score at application says less."""
    return (
        -2.3
        - 0.004 * (f["credit_score"] - 680)
        + 1.5 * (f["debt_to_income"] - 0.28)
        + 3.0 * (f["age"] < 32)
    )


def _long_term_risk(f: pd.DataFrame) -> pd.Series:
    """What changes over a loan longer than 60 months: the score at application fades (its
    slope is mostly cancelled), job stability and debt load weigh far more. Zero for every
    shorter loan, which is every loan the older scenarios generate."""
    long_term = f["loan_term_months"] > 60
    extra = (
        0.018 * (f["credit_score"] - 680)
        - 0.3 * (f["employment_years"] - 4)
        + 3.0 * (f["debt_to_income"] - 0.28)
    )
    return extra.where(long_term, 0.0)


def _first_loan_risk(f: pd.DataFrame) -> pd.Series:
    """Under 21, on a first loan: a thin file's score says nothing (its slope is cancelled); how
    many credit lines an applicant already juggles decides. Zero from 21 on, which is every
    applicant the older scenarios generate."""
    young = f["age"] < 21
    extra = 0.02 * (f["credit_score"] - 680) + 0.7 * (f["num_open_accounts"] - 3.5)
    return extra.where(young, 0.0)


def _retired_risk(f: pd.DataFrame) -> pd.Series:
    """Over 75: the gentle fall of risk with age turns round (health, care costs), a loan for
    medical bills is the riskiest, and the score says nothing (its slope is cancelled). Zero up
    to 75, which is every applicant the older scenarios generate."""
    retired = f["age"] > 75
    extra = (
        0.25 * (f["age"] - 85)
        + 0.02 * (f["credit_score"] - 680)
        + 1.5 * (f["loan_purpose"] == "medical")
    )
    return extra.where(retired, 0.0)


# Lab 07's segments. In each, the default rate is close to (or below) what a model of the old
# population expects of the segment (its risk terms are centred so): what that model gets wrong
# is the ranking within the segment, which a held-out set of mostly old rows barely weighs.
_SEGMENTS: dict[str, Callable[[np.random.Generator, pd.DataFrame], pd.DataFrame]] = {
    "new_segment": _long_term_loans,
    "new_segment_young": _first_loans,
    "new_segment_retired": _retirees,
}
_WORLDS: dict[str, Callable[[pd.DataFrame], pd.Series]] = {
    "concept_drift": _downturn,
    "concept_drift_rates": _rate_rise,
    "concept_drift_age": _repayments_resumed,
}
