"""Requests by caller: a header is whatever a client puts in it, so the label takes only the
callers serving knows, and its series stay few whatever clients send (serving/callers.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from prometheus_client import CollectorRegistry

from serving.callers import OTHER, UNKNOWN, CallerCounter, Callers
from serving.metrics import ServingMetrics

KNOWN = Callers.parse("loan-front-end, mlops-lab-traffic")


def _count(callers: Callers, sent: Sequence[str | None], path: str = "/predict") -> set[str]:
    """The caller label values after a request to ``path`` for each header in ``sent``."""
    metrics = ServingMetrics(CollectorRegistry())

    async def app(scope, receive, send) -> None:
        return None

    counter = CallerCounter(app, lambda: metrics, callers)
    for value in sent:
        headers = [] if value is None else [(b"x-caller", value.encode())]
        scope = {"type": "http", "path": path, "headers": headers}
        asyncio.run(counter(scope, None, None))
    (family,) = metrics.caller_requests.collect()
    return {s.labels["caller"] for s in family.samples if s.name.endswith("_total")}


def test_a_caller_serving_knows_is_counted_by_its_name() -> None:
    assert _count(KNOWN, ["loan-front-end", " mlops-lab-traffic "]) == {
        "loan-front-end",
        "mlops-lab-traffic",
    }


def test_unique_callers_add_one_series_whatever_they_send() -> None:
    sent = [f"loan-front-end/{n:032x}" for n in range(500)]

    assert _count(KNOWN, sent) == {OTHER}


def test_a_request_without_the_header_is_counted_as_unknown() -> None:
    assert _count(KNOWN, [None, ""]) == {UNKNOWN}


def test_any_caller_by_its_name_only_when_asked() -> None:
    every = Callers.parse("*")

    assert every.known is None
    assert _count(every, ["partner-bank", "x" * 200]) == {"partner-bank", "x" * 64}


def test_only_the_apis_endpoints_are_counted() -> None:
    assert _count(KNOWN, ["loan-front-end"], path="/predict/12345") == set()
