"""Reading a learner's CSV: types are inferred from the values, problems named with their lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.csv_data import read_training_csv
from pipelines.validation import DataValidationError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "data.csv"
    path.write_text(text)
    return path


def test_numbers_are_numeric_and_text_is_categorical(tmp_path: Path) -> None:
    path = write(tmp_path, "income,city,y\n100,Oslo,0\n250.5,Lima,1\n,Oslo,0\n")

    frame, types = read_training_csv(path, "y")

    assert types.kinds == {"income": "numeric", "city": "categorical"}
    assert frame["income"].isna().sum() == 1
    assert frame["income"].dtype == "float64"


def test_feature_order_follows_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "b,y,a\n1,0,x\n2,1,y\n")

    _, types = read_training_csv(path, "y")

    assert types.names == ["b", "a"]
    assert types.target == "y"


def test_mostly_numeric_column_with_stray_text_is_reported_with_its_lines(tmp_path: Path) -> None:
    rows = "\n".join(f"{i},0" for i in range(30))
    path = write(tmp_path, f"amount,y\n{rows}\n12 USD,1\n")

    with pytest.raises(DataValidationError, match=r"'amount'.*1 values are not numbers.*line 32"):
        read_training_csv(path, "y")


def test_mostly_text_column_is_categorical_even_with_some_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, "grade,y\nA,0\nB,1\n3,0\nC,1\n")

    _, types = read_training_csv(path, "y")

    assert types.kinds == {"grade": "categorical"}


def test_missing_target_column_lists_the_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "a,b\n1,2\n")

    with pytest.raises(DataValidationError, match="no target column 'y'; the columns are: a, b"):
        read_training_csv(path, "y")


def test_header_without_rows_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "a,y\n")

    with pytest.raises(DataValidationError, match="header but no rows"):
        read_training_csv(path, "y")


def test_missing_file_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="does not exist"):
        read_training_csv(tmp_path / "nope.csv", "y")


def test_non_utf8_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("city,y\nMünchen,0\n".encode("utf-16"))

    with pytest.raises(DataValidationError, match="UTF-8"):
        read_training_csv(path, "y")
