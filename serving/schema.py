"""The HTTP contract of the serving API, and the check of each record against the served model.

BentoML validates the request's shape (a JSON object with a non-empty ``records`` list, no longer
than ``max_batch_records``) from the type annotations. What a record must contain depends on the
model being served, which can change at any poll, so :class:`RecordSchema` is built from each
model version's feature types and checks the records in code. Its errors are raised as a pydantic
``ValidationError``, the same type BentoML raises for the shape, so every bad input gets the same
400 answer: ``{"error": ..., "detail": [{"loc": ["records", 3, "age"], "type": ..., "msg": ...}]}``.

Why in code rather than a pydantic model made per version (``create_model`` with
``extra="forbid"``, ``strict=True``, ``allow_inf_nan=False``): that model rejects the same records
but answers differently. Its messages do not say what to send ("Field required", "Extra inputs are
not permitted", with no list of the features the model takes); a number past 2**53 - 1 is a
``less_than_equal`` error, and ``10**400`` "Input should be a valid number"; an unknown category
is a ``literal_error``; and a bad 1000-record request lists thousands of errors, not the first 50.
Pydantic has no setting for its messages, so answering as below would take a Python validator per
feature plus rewriting its errors: more code than this, not less. It is faster on valid records
(pydantic-core does the loop), so revisit this if validation ever dominates a request.

Rules, decided once for every model:

- A feature missing from a record is an error; ``null`` is accepted and means "unknown" (numerics
  become NaN and categoricals None, which the pipeline imputes).
- A numeric feature takes a JSON number (not a string, not a boolean) that is finite: ``NaN`` and
  ``Infinity`` (which some encoders emit) are rejected, since "unknown" is spelled ``null``. Its
  magnitude is at most 2**53 - 1, the range where JSON numbers are portable (RFC 7493, I-JSON);
  beyond it a value such as ``1e308`` overflows the model's arithmetic (scaling alone turns it
  into infinity) and would fail the whole micro-batch it is scored in.
- A numeric value outside the range seen in training is scored (a real applicant may be older
  than any in the sample) and counted in ``serving_input_out_of_range_total{feature}``, the
  first sign of drift or of a client sending the wrong unit.
- A categorical feature takes a string. An unseen category is accepted when the model's encoder
  ignores unknown categories (the default pipeline does: it scores the record without that signal
  and drift monitoring flags the new value). It is rejected, naming the known categories, only
  when the model's encoder would fail on it.
- A field the model does not use is an error naming it: a misspelt feature (``credit_scor``) would
  otherwise be silently scored as missing-and-imputed. A new model version that drops a feature
  is therefore a contract change clients see, as it should be.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

from platform_core.settings import get_settings

# Part of the API schema, so it is fixed when the service module is imported.
MAX_RECORDS = get_settings().max_batch_records
# A response listing thousands of errors helps nobody; the first ones name the problem.
MAX_REPORTED_ERRORS = 50
_SHOWN_CATEGORIES = 20
# The largest magnitude a JSON number keeps exactly everywhere (RFC 7493, section 2.2).
MAX_MAGNITUDE = 2**53 - 1

Records = Annotated[
    list[dict[str, Any]],
    Field(
        min_length=1,
        max_length=MAX_RECORDS,
        description="One object per application: feature name -> value (null if unknown).",
    ),
]

# Sticky canary routing: during a canary rollout, every request with the same key is answered by
# the same version (serving/rollout.py). Without one, each request is routed at random.
ApplicantKey = Annotated[
    str | None,
    Field(
        min_length=1,
        max_length=200,
        description="Optional. A stable id of the applicant (a customer number, or a hash of "
        "it): during a canary rollout, requests with the same key get the same model version.",
    ),
]


class PredictResponse(BaseModel):
    predictions: list[int] = Field(description="Predicted class of each record, in order.")
    probabilities: list[float] = Field(description="Probability of the positive class.")
    model_version: str = Field(description="Registry version of the model that answered.")
    request_id: str = Field(description="Quote it in POST /feedback to attach true labels.")


class Label(BaseModel):
    # Printable ASCII, as every id /predict hands out is: a control character (NUL above all,
    # which PostgreSQL cannot even compare) is a client's bug, refused by name.
    request_id: str = Field(min_length=1, max_length=64, pattern=r"^[\x20-\x7e]+$")
    record_index: int = Field(default=0, ge=0, description="Position of the record in its request.")
    label: Literal[0, 1] = Field(description="What really happened (1 = the positive class).")


Labels = Annotated[list[Label], Field(min_length=1, max_length=MAX_RECORDS)]


class UnknownRecord(BaseModel):
    request_id: str
    record_index: int


class FeedbackResponse(BaseModel):
    received: int
    stored: int = Field(description="Labels attached to a logged prediction.")
    unknown: list[UnknownRecord] = Field(
        description="Labels whose prediction is not in the log (wrong id, or never answered)."
    )


@dataclass(frozen=True)
class RecordSchema:
    """What one model version accepts: feature name -> kind, and the categories it can encode."""

    kinds: Mapping[str, Literal["numeric", "categorical"]]
    # Only for categoricals whose encoder fails on unseen values; others accept any string.
    closed_categories: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Numeric feature -> (min, max) in the version's reference sample; outside is counted only.
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def validate(self, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The records reduced to the model's features, or a ValidationError naming each problem."""
        errors: list[InitErrorDetails] = []
        clean: list[dict[str, Any]] = []
        for index, record in enumerate(records):
            row: dict[str, Any] = {}
            for name, kind in self.kinds.items():
                loc = ("records", index, name)
                if name not in record:
                    errors.append(_error(loc, "missing", "Field required (send null if unknown)"))
                    continue
                value, problem = self._check(name, kind, record[name])
                if problem is None:
                    row[name] = value
                else:
                    errors.append({"type": problem, "loc": loc, "input": record[name]})
            errors.extend(
                _error(("records", index, name), "extra_forbidden", self._unused_message())
                for name in record
                if name not in self.kinds
            )
            clean.append(row)
            if len(errors) >= MAX_REPORTED_ERRORS:
                break
        if errors:
            raise ValidationError.from_exception_data("records", errors[:MAX_REPORTED_ERRORS])
        return clean

    def out_of_range(self, records: Sequence[Mapping[str, Any]]) -> dict[str, int]:
        """Feature -> how many of these validated records lie outside its training range."""
        counts: dict[str, int] = {}
        for name, (low, high) in self.ranges.items():
            outside = sum(
                1
                for record in records
                if (v := record.get(name)) is not None and not low <= v <= high
            )
            if outside:
                counts[name] = outside
        return counts

    def _unused_message(self) -> str:
        names = list(self.kinds)
        hidden = len(names) - _SHOWN_CATEGORIES
        more = f" and {hidden} more" if hidden > 0 else ""
        return (
            "Not a feature of the served model version; remove it. It takes: "
            f"{', '.join(names[:_SHOWN_CATEGORIES])}{more}"
        )

    def _check(self, name: str, kind: str, value: Any) -> tuple[Any, PydanticCustomError | None]:
        if value is None:
            return None, None
        if kind == "numeric":
            # bool is an int in Python, but `true` is never a valid amount.
            if isinstance(value, bool) or not isinstance(value, int | float):
                return None, _custom(
                    "float_type", f"Input should be a number, not {_json_type(value)}"
                )
            if isinstance(value, float) and not math.isfinite(value):
                return None, _custom(
                    "finite_number", "Input should be a finite number (send null if unknown)"
                )
            # Compared before float(): an integer too large for a float would raise here.
            if abs(value) > MAX_MAGNITUDE:
                return None, _custom(
                    "number_too_large",
                    f"Input should be at most {MAX_MAGNITUDE} in magnitude; larger numbers lose "
                    "precision and overflow the model's arithmetic",
                )
            return float(value), None
        if not isinstance(value, str):
            return None, _custom(
                "string_type", f"Input should be a category (a string), not {_json_type(value)}"
            )
        known = self.closed_categories.get(name)
        if known is not None and value not in known:
            listed = ", ".join(sorted(known)[:_SHOWN_CATEGORIES])
            hidden = len(known) - _SHOWN_CATEGORIES
            more = f" and {hidden} more" if hidden > 0 else ""
            return None, _custom(
                "unknown_category",
                f"Unknown category {value!r}: this model version only knows {listed}{more}",
            )
        return value, None


def records_from_frame(frame: Any, names: Sequence[str]) -> list[dict[str, Any]]:
    """A DataFrame's rows as JSON-ready records: native Python values, None where missing."""
    columns = frame[list(names)].astype(object)
    return columns.where(columns.notna(), None).to_dict("records")


def _custom(kind: str, message: str) -> PydanticCustomError:
    # Without a context pydantic uses the message as it is, so user input in it is safe (its
    # LiteralString parameters guard against formatting one with a context).
    return PydanticCustomError(kind, message)  # pyright: ignore[reportArgumentType]


def _error(loc: tuple, kind: str, message: str) -> InitErrorDetails:
    return {"type": _custom(kind, message), "loc": loc, "input": None}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
