"""Under overload /predict sheds requests with a 503 and Retry-After, never queueing them all."""

from __future__ import annotations

import asyncio

import httpx

from pipelines import data
from serving.schema import records_from_frame
from tests.models import TYPES
from tests.serving.conftest import Platform, metric

SHED = "serving_requests_shed_total"


async def _burst(url: str, body: dict, requests: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=requests)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        return await asyncio.gather(*(client.post("/predict", json=body) for _ in range(requests)))


def test_a_burst_beyond_the_queue_bound_is_shed_with_503_and_retry_after(
    platform: Platform,
) -> None:
    # Full requests (max_batch_records=50), 3,200 records at once: eight times the bound of 400
    # records waiting, so the batcher must shed most of them.
    body = {"records": records_from_frame(data.generate(50, seed=61), TYPES.names)}
    before = metric(platform.url, SHED) or 0.0
    responses = asyncio.run(_burst(platform.url, body, requests=64))
    codes = [r.status_code for r in responses]
    shed = [r for r in responses if r.status_code == 503]
    assert set(codes) <= {200, 503}, codes
    assert shed and 200 in codes, codes
    for response in shed:
        assert response.headers["retry-after"] == "1"
        assert "overloaded" in response.json()["error"]
    assert metric(platform.url, SHED) == before + len(shed)
