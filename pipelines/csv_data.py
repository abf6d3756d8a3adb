"""Bring your own CSV: read it, infer each column's type, and name whatever is wrong with it.

Types are inferred from the values, not from pandas' guesses: a column is numeric when every
non-empty value parses as a number, categorical when most values are not numbers. A column
that is numeric except for a few stray values is neither: that is almost always a data bug
("12,5", "n.a.", a unit in the cell), so it is reported with the lines to look at instead of
being silently turned into a category or into missing values.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from pipelines.validation import DataValidationError, describe_rows, missing_target_message
from platform_core.contract import FeatureKind, FeatureTypes

# A column where at least this share of values are numbers is meant to be numeric.
NUMERIC_SHARE = 0.9


def read_training_csv(path: Path, target: str) -> tuple[pd.DataFrame, FeatureTypes]:
    """The CSV's rows (numerics as floats, categoricals as strings) and the inferred types."""
    source = str(path)
    raw = _read(path)
    raw.columns = [str(c).strip() for c in raw.columns]
    if target not in raw.columns:
        raise DataValidationError(source, [missing_target_message(target, list(raw.columns))])
    if raw.empty:
        raise DataValidationError(source, ["the file has a header but no rows"])

    kinds: dict[str, FeatureKind] = {}
    problems: list[str] = []
    frame = pd.DataFrame(index=raw.index)
    for name in raw.columns:
        if name == target:
            frame[name] = raw[name]
            continue
        kind, column, problem = _infer(raw[name], name)
        kinds[name] = kind
        frame[name] = column
        if problem:
            problems.append(problem)
    if problems:
        raise DataValidationError(source, problems)
    return frame, FeatureTypes(kinds=kinds, target=target)


def _read(path: Path) -> pd.DataFrame:
    source = str(path)
    if not path.exists():
        raise DataValidationError(source, ["the file does not exist"])
    if not path.is_file():
        raise DataValidationError(source, ["this is not a file"])
    if path.stat().st_size == 0:
        raise DataValidationError(source, ["the file is empty (0 bytes)"])
    try:
        # Everything as text first: inference below decides what is a number.
        return pd.read_csv(path, dtype=str, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DataValidationError(source, ["the file has no header and no rows"]) from None
    except (pd.errors.ParserError, csv.Error) as error:
        detail = str(error).strip().replace("\n", " ")
        raise DataValidationError(source, [f"the file is not valid CSV: {detail}"]) from None
    except UnicodeDecodeError as error:
        raise DataValidationError(
            source, [f"the file is not UTF-8 text (byte {error.start}); save it as UTF-8 CSV"]
        ) from None


def _infer(raw: pd.Series, name: str) -> tuple[FeatureKind, pd.Series, str | None]:
    text = raw.str.strip()
    present = text.notna() & (text != "")
    numbers = pd.to_numeric(text.where(present), errors="coerce")
    unparsed = present & numbers.isna()
    if not present.any() or not unparsed.any():
        return "numeric", numbers.astype("float64"), None
    share = 1 - unparsed.sum() / present.sum()
    if share >= NUMERIC_SHARE:
        shown = ", ".join(repr(v) for v in text[unparsed].unique()[:3])
        problem = (
            f"column {name!r} holds numbers, but {int(unparsed.sum())} values are not numbers "
            f"({shown} at {describe_rows(text.index[unparsed])})"
        )
        return "numeric", numbers.astype("float64"), problem
    # pandas-stubs leave out None for ``other``; pandas takes it (missing stays missing).
    categories = text.where(present, None).astype(object)  # pyright: ignore[reportArgumentType]
    return "categorical", categories, None
