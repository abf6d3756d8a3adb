"""Serving refuses what a web page could make the learner's browser send (platform_core.web_guard):
a form or text/plain POST, a foreign Host (DNS rebinding), a cross-site Origin. Scripts, probes
and the platform's own pages still get through."""

from __future__ import annotations

import json

import httpx
import pytest

from pipelines import data
from serving.schema import records_from_frame
from tests.models import TYPES

RECORDS = records_from_frame(data.generate(1, seed=71), TYPES.names)
# Valid JSON, so the content type is the only thing wrong: BentoML would parse it.
PREDICT_BODY = json.dumps({"records": RECORDS})
LABELS = [{"request_id": "any", "label": 1}]
FEEDBACK_BODY = json.dumps({"labels": LABELS})


@pytest.mark.parametrize(
    ("path", "body"),
    [("/predict", PREDICT_BODY), ("/feedback", FEEDBACK_BODY)],
    ids=["predict", "feedback"],
)
def test_a_text_plain_post_is_refused_with_415(http: httpx.Client, path: str, body: str) -> None:
    response = http.post(path, content=body, headers={"content-type": "text/plain"})
    assert response.status_code == 415, response.text
    assert "application/json" in response.json()["error"]


def test_a_form_post_is_refused_with_415(http: httpx.Client) -> None:
    # What an auto-submitting HTML form sends; BentoML parses the field as the JSON it holds.
    response = http.post("/feedback", data={"labels": json.dumps(LABELS)})
    assert response.status_code == 415, response.text


# Names an attacker can register and point at 127.0.0.1, some dressed as the allowed ones.
@pytest.mark.parametrize(
    "host", ["attacker.example", "serving.attacker.example", "127.0.0.1.attacker.example:3000"]
)
def test_a_foreign_host_is_refused_with_400(http: httpx.Client, host: str) -> None:
    response = http.get("/livez", headers={"host": host})
    assert response.status_code == 400
    assert host in response.json()["error"]


def test_a_prediction_from_another_site_is_refused_with_403(http: httpx.Client) -> None:
    origin = {"origin": "http://attacker.example"}
    response = http.post("/predict", json={"records": RECORDS}, headers=origin)
    assert response.status_code == 403
    assert "attacker.example" in response.json()["error"]


def test_a_prediction_from_the_services_own_page_is_answered(http: httpx.Client) -> None:
    origin = {"origin": f"http://localhost:{http.base_url.port}"}
    response = http.post("/predict", json={"records": RECORDS}, headers=origin)
    assert response.status_code == 200, response.text


# How a cluster reaches a pod: its Service's names (from this namespace and from another), and
# the pod's IP (kubelet probes, Prometheus scrapes).
@pytest.mark.parametrize(
    "host",
    [
        "serving:3000",
        "serving.mlops-lab.svc:3000",
        "serving.mlops-lab.svc.cluster.local:3000",
        "10.244.0.7:3000",
        "[::1]:3000",
    ],
)
def test_in_cluster_names_and_addresses_are_answered(http: httpx.Client, host: str) -> None:
    assert http.get("/livez", headers={"host": host}).status_code == 200


def test_prometheus_still_scrapes(http: httpx.Client) -> None:
    response = http.get("/metrics")
    assert response.status_code == 200
    assert "serving_model_version" in response.text
