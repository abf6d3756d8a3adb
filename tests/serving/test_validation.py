"""Bad input is a 400 that names the field and the problem; never a 5xx."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from pydantic import ValidationError

from pipelines import data, training
from serving.model import closed_categories
from serving.schema import MAX_REPORTED_ERRORS, RecordSchema, records_from_frame
from tests.models import TYPES
from tests.serving.conftest import Platform, metric

GOOD = records_from_frame(data.generate(1, seed=31), TYPES.names)[0]


def _without(name: str) -> dict[str, Any]:
    return {k: v for k, v in GOOD.items() if k != name}


# (body as sent, the loc BentoML reports, the error type)
BAD_INPUTS = {
    "missing field": (
        {"records": [_without("credit_score")]},
        ["records", 0, "credit_score"],
        "missing",
    ),
    "number as text": (
        {"records": [{**GOOD, "age": "forty"}]},
        ["records", 0, "age"],
        "float_type",
    ),
    "boolean for a number": (
        {"records": [{**GOOD, "age": True}]},
        ["records", 0, "age"],
        "float_type",
    ),
    "number for a category": (
        {"records": [{**GOOD, "home_ownership": 2}]},
        ["records", 0, "home_ownership"],
        "string_type",
    ),
    "bad field in second record": (
        {"records": [GOOD, {**GOOD, "loan_amount": [1]}]},
        ["records", 1, "loan_amount"],
        "float_type",
    ),
    "field the model does not use": (
        {"records": [GOOD, {**GOOD, "credit_scor": 600}]},
        ["records", 1, "credit_scor"],
        "extra_forbidden",
    ),
    "number that overflows the model": (
        {"records": [{**GOOD, "debt_to_income": 1e308}]},
        ["records", 0, "debt_to_income"],
        "number_too_large",
    ),
    "integer too large for a float": (
        {"records": [{**GOOD, "annual_income": 10**400}]},
        ["records", 0, "annual_income"],
        "number_too_large",
    ),
    "empty list": ({"records": []}, ["records"], "too_short"),
    "over the batch limit": ({"records": [GOOD] * 51}, ["records"], "too_long"),
    "no records key": ({"rows": [GOOD]}, ["records"], "missing"),
    "records not a list": ({"records": GOOD}, ["records"], "list_type"),
    "record not an object": ({"records": [3]}, ["records", 0], "dict_type"),
}


@pytest.mark.parametrize("body, loc, kind", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_is_a_400_naming_the_field(http, body, loc, kind) -> None:
    response = http.post("/predict", json=body)
    assert response.status_code == 400, response.text
    details = response.json()["detail"]
    assert any(d["loc"] == loc and d["type"] == kind for d in details), details
    assert all(d["msg"] for d in details)


@pytest.mark.parametrize("literal", ["Infinity", "-Infinity", "NaN"])
def test_non_finite_number_is_rejected(http, literal) -> None:
    raw = json.dumps({"records": [GOOD]}).replace(f'"age": {GOOD["age"]}', f'"age": {literal}')
    response = http.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    (detail,) = response.json()["detail"]
    assert (detail["loc"], detail["type"]) == (["records", 0, "age"], "finite_number")


def test_null_is_still_accepted_as_unknown(http) -> None:
    response = http.post("/predict", json={"records": [{**GOOD, "age": None}]})
    assert response.status_code == 200, response.text


def test_out_of_range_values_are_scored_and_counted_by_feature(platform: Platform, http) -> None:
    name = 'serving_input_out_of_range_total{feature="age"}'
    before = metric(platform.url, name) or 0.0
    records = [{**GOOD, "age": -5}, {**GOOD, "age": 150}, GOOD]
    response = http.post("/predict", json={"records": records})
    assert response.status_code == 200, response.text
    assert metric(platform.url, name) == before + 2


def test_malformed_json_is_a_400_saying_where(http) -> None:
    response = http.post(
        "/predict", content=b'{"records": [{"age": 4', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    detail = response.json()["detail"][0]
    assert detail["type"] == "json_invalid"
    assert "line 1 column" in detail["msg"]


def test_bad_feedback_label_is_a_400_naming_the_field(http) -> None:
    response = http.post("/feedback", json={"labels": [{"request_id": "r", "label": 7}]})
    assert response.status_code == 400
    assert response.json()["detail"][0]["loc"] == ["labels", 0, "label"]


def test_a_feedback_request_id_with_a_control_character_is_a_400_naming_the_field(http) -> None:
    # PostgreSQL cannot store or compare a NUL: it reached the database as a 503 "retry later".
    response = http.post("/feedback", json={"labels": [{"request_id": "a\x00b", "label": 1}]})
    assert response.status_code == 400, response.text
    assert response.json()["detail"][0]["loc"] == ["labels", 0, "request_id"]


def test_rejections_are_counted_by_field_and_reason(platform: Platform, http) -> None:
    name = 'serving_validation_failures_total{field="num_open_accounts",reason="missing"}'
    before = metric(platform.url, name) or 0.0
    http.post("/predict", json={"records": [_without("num_open_accounts")] * 3})
    assert metric(platform.url, name) == before + 1


def test_rejections_are_logged_as_one_line_not_a_traceback(platform: Platform, http) -> None:
    http.post("/predict", json={"records": [{**GOOD, "credit_score": "high"}]})
    expected = "Rejected bad input to /predict [POST] with 400: records.0.credit_score"
    lines = platform.settings.paths.log_file("serving").read_text().splitlines()
    found = [i for i, line in enumerate(lines) if expected in line]
    assert found, "no rejection line in the serving log"
    assert not lines[found[-1] + 1 :][:1] or "Traceback" not in lines[found[-1] + 1]


def _strict_model():
    frame = data.generate(800, seed=5)
    split = training.split(frame, TYPES, 5)
    pipeline = training.build_pipeline(TYPES, 5)
    pipeline.set_params(preprocess__categorical__onehotencoder__handle_unknown="error")
    return pipeline.fit(split.X_train, split.y_train)


def test_unknown_category_is_rejected_when_the_encoder_cannot_take_it() -> None:
    schema = RecordSchema(TYPES.kinds, closed_categories(_strict_model(), TYPES))
    with pytest.raises(ValidationError) as raised:
        schema.validate([{**GOOD, "loan_purpose": data.NEW_PURPOSE}])
    (error,) = raised.value.errors()
    assert error["loc"] == ("records", 0, "loan_purpose")
    assert error["type"] == "unknown_category"
    assert "debt_consolidation" in error["msg"]


def test_unknown_category_is_accepted_when_the_encoder_ignores_it() -> None:
    frame = data.generate(800, seed=6)
    split = training.split(frame, TYPES, 6)
    model = training.build_pipeline(TYPES, 6).fit(split.X_train, split.y_train)
    schema = RecordSchema(TYPES.kinds, closed_categories(model, TYPES))
    assert schema.validate([{**GOOD, "loan_purpose": data.NEW_PURPOSE}])


# Part of the contract: a client reads `msg` to learn what to send instead (pydantic's own
# messages would not say it; see serving/schema.py).
HINTS = {
    "missing field": (_without("credit_score"), "credit_score", "send null if unknown"),
    "non-finite number": ({**GOOD, "age": math.inf}, "age", "send null if unknown"),
    "boolean for a number": ({**GOOD, "age": True}, "age", "not a boolean"),
    "field the model does not use": ({**GOOD, "credit_scor": 600}, "credit_scor", "credit_score"),
}


@pytest.mark.parametrize("record, field, hint", HINTS.values(), ids=HINTS.keys())
def test_error_message_says_what_to_send_instead(record, field, hint) -> None:
    with pytest.raises(ValidationError) as raised:
        RecordSchema(TYPES.kinds).validate([record])
    (error,) = raised.value.errors()
    assert error["loc"] == ("records", 0, field)
    assert hint in error["msg"]


def test_a_bad_batch_reports_its_first_errors_only() -> None:
    bad = {**GOOD, "age": "forty", "credit_score": "high"}
    with pytest.raises(ValidationError) as raised:
        RecordSchema(TYPES.kinds).validate([bad] * 1000)
    assert raised.value.error_count() == MAX_REPORTED_ERRORS
