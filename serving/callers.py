"""Requests by calling application: ``serving_caller_requests_total{caller, endpoint}``.

A client names itself in the ``X-Caller`` header (the loan front end sends ``loan-front-end``,
`mlops-lab traffic` sends ``mlops-lab-traffic``), and serving counts its requests to the API under
that name: who sends how much, and whose requests fail, without reading the access log.

Every value a label takes is a time series Prometheus keeps in memory and on disk, and a counter
keeps every label set it has counted until its process restarts. A header is whatever a client
puts in it, so the label takes only the callers serving knows (``MLOPS_LAB_SERVING_CALLERS``):
any other name is counted as ``other``, a request without the header as ``unknown``. Whatever
clients send, the metric has at most (known callers + 2) series per endpoint. ``*`` counts every
caller by the name it sends: safe only while every client sends a fixed name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from serving.metrics import ServingMetrics

HEADER = "X-Caller"
OTHER = "other"
UNKNOWN = "unknown"
ANY = "*"
# The API's endpoints, by path: only these are counted, so a path is never a label value.
ENDPOINTS = frozenset({"/predict", "/feedback"})
# Under ``*`` a name is cut to this length: Prometheus keeps every character of every value.
MAX_NAME = 64
_HEADER_KEY = HEADER.lower().encode()  # ASGI gives header names in lower case

Scope = Mapping[str, Any]


@dataclass(frozen=True)
class Callers:
    """The callers counted by name (``None``: every caller by the name it sends)."""

    known: frozenset[str] | None

    @classmethod
    def parse(cls, spec: str) -> Callers:
        """``MLOPS_LAB_SERVING_CALLERS``: names separated by commas, or ``*``."""
        names = {name.strip() for name in spec.split(",") if name.strip()}
        return cls(None if ANY in names else frozenset(names))

    def label(self, sent: str | None) -> str:
        """The ``caller`` label of a request whose header says ``sent`` (None: no header)."""
        name = (sent or "").strip()
        if not name:
            return UNKNOWN
        if self.known is None:
            return name[:MAX_NAME]
        return name if name in self.known else OTHER


def sent_caller(scope: Scope) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == _HEADER_KEY:
            return value.decode("latin-1")
    return None


class CallerCounter:
    """ASGI middleware: counts each request to an API endpoint by its caller.

    ``metrics`` is called when the first request is counted: the middleware is declared with the
    service class, before the worker has created the service and its metrics.
    """

    def __init__(self, app: Any, metrics: Callable[[], ServingMetrics], callers: Callers) -> None:
        self.app = app
        self._metrics = metrics
        self.callers = callers

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path") in ENDPOINTS:
            caller = self.callers.label(sent_caller(scope))
            self._metrics().caller_requests.labels(caller=caller, endpoint=scope["path"]).inc()
        await self.app(scope, receive, send)
