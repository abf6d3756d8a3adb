"""The monitor's drift check (Evidently's statistical tests, no report drawn) and the full
Evidently report (`drift check --html`) reach the same verdicts, on every scenario the platform
simulates, with and without missing values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from monitoring.drift import run_report
from pipelines import data
from platform_core.settings import Settings
from tests.models import TYPES

SETTINGS = Settings()
REFERENCE = data.generate(1_000, "baseline", seed=1)


def _windows():
    for scenario in data.SCENARIOS:
        yield scenario, data.generate(300, scenario, seed=5)
    holes = data.generate(300, "baseline", seed=6)
    holes.loc[holes.index[:120], "annual_income"] = np.nan
    holes["employment_years"] = np.nan  # empty on one side: missing share only
    yield "missing and empty", holes


@pytest.mark.parametrize(
    ("name", "window"), list(_windows()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_the_lean_check_and_the_report_agree(name: str, window) -> None:
    lean, none = run_report(REFERENCE, window, TYPES, SETTINGS, with_report=False)
    full, snapshot = run_report(REFERENCE, window, TYPES, SETTINGS, with_report=True)
    assert none is None and snapshot is not None
    assert lean.drifted_features == full.drifted_features, name
    assert lean.dataset_drifted == full.dataset_drifted
    assert lean.evidently_dataset_drifted == full.evidently_dataset_drifted
    for mine, theirs in zip(lean.features, full.features, strict=True):
        assert mine.feature == theirs.feature
        assert mine.distribution_drifted == theirs.distribution_drifted, mine.feature
        assert mine.missing_share == pytest.approx(theirs.missing_share), mine.feature
        if math.isnan(theirs.score):
            assert math.isnan(mine.score)
        else:
            assert mine.score == pytest.approx(theirs.score, rel=1e-9, abs=1e-12), mine.feature
