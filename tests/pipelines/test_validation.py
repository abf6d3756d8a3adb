"""Checks every training set passes, whatever its source."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.validation import DataValidationError, to_binary, validate
from platform_core.contract import FeatureTypes

TYPES = FeatureTypes(kinds={"x": "numeric"}, target="y")


def frame(labels: list) -> pd.DataFrame:
    return pd.DataFrame({"x": range(len(labels)), "y": labels})


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0, 1, 1], [0, 1, 1]),
        (["true", "False", "TRUE"], [1, 0, 1]),
        (["yes", "no", " Yes "], [1, 0, 1]),
        ([True, False, True], [1, 0, 1]),
        (["1.0", "0.0", "1"], [1, 0, 1]),
    ],
)
def test_binary_labels_are_read_in_common_spellings(values: list, expected: list) -> None:
    labels, problem = to_binary(pd.Series(values), "y")

    assert problem is None
    assert labels is not None
    assert labels.tolist() == expected


def test_labels_with_more_than_two_values_are_rejected() -> None:
    _, problem = to_binary(pd.Series(["a", "b", "c"]), "y")

    assert problem is not None and "must be binary" in problem and "'a'" in problem


def test_valid_frame_gets_integer_labels() -> None:
    out = validate(frame(["yes", "no"] * 20), TYPES, min_rows=20, source="s")

    assert out["y"].tolist() == [1, 0] * 20


def test_too_few_rows_is_rejected() -> None:
    with pytest.raises(DataValidationError, match="only 40 rows; training needs at least 200"):
        validate(frame([0, 1] * 20), TYPES, min_rows=200, source="s")


def test_single_class_is_rejected() -> None:
    with pytest.raises(DataValidationError, match="single class"):
        validate(frame([0] * 50), TYPES, min_rows=20, source="s")


def test_rare_class_is_rejected() -> None:
    with pytest.raises(DataValidationError, match="only 3 rows of class 1"):
        validate(frame([0] * 47 + [1] * 3), TYPES, min_rows=20, source="s")


def test_missing_labels_are_rejected_with_their_lines() -> None:
    data = frame([0, 1] * 20)
    data.loc[4, "y"] = None

    with pytest.raises(DataValidationError, match=r"empty in 1 rows \(first at line 6\)"):
        validate(data, TYPES, min_rows=20, source="s")


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(DataValidationError) as caught:
        validate(frame([0] * 5), TYPES, min_rows=20, source="s")

    assert len(caught.value.problems) == 2
