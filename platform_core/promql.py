"""An instant PromQL query against Prometheus's HTTP API (``/api/v1/query``).

Lab checks, the end-to-end test and the loop benchmark all ask Prometheus the same way: one
helper, so each reads a result in one shape, logs in where Prometheus asks for it
(:mod:`platform_core.monitoring_auth`), and a refused query says why.
"""

from __future__ import annotations

from typing import Any

import httpx

from platform_core import http_calls, monitoring_auth
from platform_core.errors import PlatformError
from platform_core.settings import Settings


def query(settings: Settings, expr: str, timeout_s: float = 10.0) -> list[dict[str, Any]]:
    """Each series of the answer: its labels (``metric``) and its value as a float (``value``).
    A scalar answer (``time()``) is one series without labels."""
    data = _ask(settings, "query", {"query": expr}, expr, timeout_s)
    if data["resultType"] == "scalar":
        return [{"metric": {}, "value": float(data["result"][1])}]
    return [{"metric": r["metric"], "value": float(r["value"][1])} for r in data["result"]]


def query_range(
    settings: Settings,
    expr: str,
    start: float,
    end: float,
    step_s: float,
    timeout_s: float = 30.0,
) -> list[dict[str, Any]]:
    """A range query: each series' labels (``metric``) and its ``values``, (unix time, float)
    pairs at the steps where it had one."""
    params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step_s:g}"}
    data = _ask(settings, "query_range", params, expr, timeout_s)
    return [
        {"metric": r["metric"], "values": [(float(t), float(v)) for t, v in r["values"]]}
        for r in data["result"]
    ]


def _ask(
    settings: Settings, endpoint: str, params: dict[str, str], expr: str, timeout_s: float
) -> dict[str, Any]:
    prometheus_url = settings.prometheus_url
    try:
        response = http_calls.get(
            f"{prometheus_url}/api/v1/{endpoint}",
            params=params,
            timeout=timeout_s,
            auth=monitoring_auth.auth(settings),
        )
    except httpx.HTTPError as error:
        raise PlatformError(
            f"Prometheus did not answer at {prometheus_url} ({error}).",
            hint="`mlops-lab status` shows whether it runs.",
        ) from error
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not response.is_success or body.get("status") != "success":
        # A bad expression is a 400 whose body says what is wrong with it.
        reason = body.get("error") or f"HTTP {response.status_code}"
        raise PlatformError(f"Prometheus at {prometheus_url} refused {expr!r}: {reason}.")
    return body["data"]
