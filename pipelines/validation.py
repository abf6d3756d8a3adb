"""Checks every training set passes before anything is logged or registered.

Generated data, a learner's CSV and retraining data all go through :func:`validate`, so a
problem is reported the same way whatever its source: one message naming each problem, and
nothing written to MLflow.
"""

from __future__ import annotations

import pandas as pd

from platform_core.contract import FeatureTypes
from platform_core.errors import PlatformError

# Below this many examples of a class, a held-out split leaves too few to measure AUC with.
MIN_ROWS_PER_CLASS = 10

# Spellings of a binary label a CSV may use; anything else is rejected rather than guessed.
_TRUE = frozenset({"1", "1.0", "true", "yes"})
_FALSE = frozenset({"0", "0.0", "false", "no"})

NOTHING_WRITTEN = "Fix the data and run again. Nothing was logged or registered."


class DataValidationError(PlatformError):
    """The training data cannot be used; the message lists every problem found."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        if len(problems) == 1:
            message = f"{source}: {problems[0]}"
        else:
            message = f"{source} has {len(problems)} problems:\n" + "\n".join(
                f"  - {p}" for p in problems
            )
        super().__init__(message, hint=NOTHING_WRITTEN)


def validate(frame: pd.DataFrame, types: FeatureTypes, min_rows: int, source: str) -> pd.DataFrame:
    """The frame with its target as 0/1 integers, or :class:`DataValidationError`."""
    if types.target not in frame.columns:
        raise DataValidationError(
            source, [missing_target_message(types.target, list(frame.columns))]
        )
    missing_features = [name for name in types.names if name not in frame.columns]
    if missing_features:
        raise DataValidationError(
            source, [f"missing feature columns: {', '.join(missing_features)}"]
        )
    if not types.names:
        raise DataValidationError(
            source, [f"there are no feature columns besides the target {types.target!r}"]
        )

    problems: list[str] = []
    labels, label_problem = to_binary(frame[types.target], types.target)
    if label_problem:
        problems.append(label_problem)
    if len(frame) < min_rows:
        problems.append(f"only {len(frame)} rows; training needs at least {min_rows}")
    if labels is not None:
        problems.extend(_class_balance_problems(labels, types.target))
    if problems:
        raise DataValidationError(source, problems)
    assert labels is not None
    out = frame.copy()
    out[types.target] = labels
    return out


def to_binary(column: pd.Series, name: str) -> tuple[pd.Series | None, str | None]:
    """0/1 labels from 0/1, true/false or yes/no, or the reason they cannot be read."""
    missing = column.isna()
    if missing.any():
        return None, (
            f"the target {name!r} is empty in {int(missing.sum())} rows "
            f"(first at {describe_rows(column.index[missing])}); fill or drop those rows"
        )
    text = column.astype(str).str.strip().str.lower()
    unknown = sorted(set(text) - _TRUE - _FALSE)
    if unknown:
        shown = ", ".join(repr(v) for v in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        return None, (
            f"the target {name!r} must be binary (0/1, true/false or yes/no); "
            f"it also holds {shown}{more}"
        )
    return text.isin(_TRUE).astype(int), None


def _class_balance_problems(labels: pd.Series, name: str) -> list[str]:
    counts = labels.value_counts()
    if len(counts) < 2:
        only = int(counts.index[0]) if len(counts) else "none"
        return [
            f"the target {name!r} has a single class (every row is {only}); "
            "a classifier needs examples of both 0 and 1"
        ]
    rare = counts[counts < MIN_ROWS_PER_CLASS]
    # pandas-stubs type an index label as Hashable; here it is a class of the (binary) target.
    return [
        f"the target {name!r} has only {int(count)} row{'s' if count != 1 else ''} of class "
        f"{int(label)}; at least {MIN_ROWS_PER_CLASS} of each class are needed"  # pyright: ignore[reportArgumentType]
        for label, count in rare.items()
    ]


def missing_target_message(name: str, columns: list[str]) -> str:
    shown = ", ".join(str(c) for c in columns[:20])
    more = f" (and {len(columns) - 20} more)" if len(columns) > 20 else ""
    return f"there is no target column {name!r}; the columns are: {shown}{more}"


def describe_rows(index: pd.Index, limit: int = 3) -> str:
    """Rows as a reader finds them in a CSV: line numbers, counting the header as line 1."""
    lines = ", ".join(str(int(i) + 2) for i in index[:limit])
    more = ", ..." if len(index) > limit else ""
    return f"line{'s' if len(index) > 1 else ''} {lines}{more}"
