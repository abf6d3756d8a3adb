"""Bad input, counted by field and reason and logged as one line, not a server-error traceback.

BentoML answers every pydantic ``ValidationError`` with a 400 whose JSON body lists the problems
(``{"detail": [{"loc": ["records", 3, "age"], "type": "float_type", ...}]}``), whether it came from
the request's shape (malformed JSON, an empty or oversized ``records`` list) or from our per-model
checks. :class:`RejectionCounter` is an ASGI middleware, the hook BentoML supports for this
(``Service.add_asgi_middleware``): it reads those 400 bodies on their way out, counts each
rejection in ``serving_validation_failures_total{field, reason}`` and logs one WARNING naming the
fields, which is what an operator needs to find the misbehaving client.

BentoML also logs each of these exceptions at ERROR with a full traceback and has no setting to
turn that off. A client's mistake is not a server error, and a traceback per bad request buries
real failures, so :class:`QuietValidationErrors`, a logging filter on the logger BentoML reports
them to, drops exactly those records; every other exception keeps its traceback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from serving.metrics import ServingMetrics

log = logging.getLogger(__name__)

# Where BentoML's HTTP layer logs the exceptions it turned into responses.
BENTOML_HTTP_LOGGER = "bentoml._internal.server.http_app"
_MAX_FIELDS_IN_LOG = 5
# A 400 body lists at most 50 errors; anything much larger is not one of ours.
_MAX_BODY_BYTES = 256 * 1024

Scope = Mapping[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]


def field_of(loc: Sequence[Any]) -> str:
    """The field an error is about: ``["records", 3, "age"]`` -> ``age``; no field -> ``body``."""
    names = [part for part in loc if isinstance(part, str)]
    return names[-1] if names else "body"


def failure_labels(details: Sequence[Mapping[str, Any]]) -> set[tuple[str, str]]:
    """(field, reason) of each problem, once per request however many records share it."""
    return {
        (field_of(detail.get("loc", ())), str(detail.get("type", "unknown"))) for detail in details
    }


def details_of(body: bytes) -> list[dict[str, Any]]:
    """The ``detail`` list of a 400 body; one generic entry when the body has none."""
    try:
        details = json.loads(body).get("detail")
    except (ValueError, AttributeError):
        details = None
    if isinstance(details, list) and all(isinstance(d, dict) for d in details) and details:
        return details
    return [{"loc": [], "type": "bad_request", "msg": "Bad request"}]


def summary(details: Sequence[Mapping[str, Any]]) -> str:
    shown = "; ".join(
        f"{'.'.join(str(p) for p in d.get('loc', ())) or 'body'}: {d.get('msg', '')}"
        for d in details[:_MAX_FIELDS_IN_LOG]
    )
    hidden = len(details) - _MAX_FIELDS_IN_LOG
    return shown + (f" (+{hidden} more)" if hidden > 0 else "")


class RejectionCounter:
    """ASGI middleware: counts and logs every 400 the service answers.

    ``metrics`` is called when the first rejection is counted: the middleware is declared with
    the service class, before the worker has created the service and its metrics.
    """

    def __init__(self, app: Any, metrics: Callable[[], ServingMetrics]) -> None:
        self.app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0
        body = bytearray()

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and status == 400:
                if len(body) < _MAX_BODY_BYTES:
                    body.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    # Before the last chunk goes out, so a client that reads /metrics right
                    # after its 400 already sees it counted.
                    self.record(scope, bytes(body))
            await send(message)

        await self.app(scope, receive, watch)

    def record(self, scope: Scope, body: bytes) -> None:
        details = details_of(body)
        failures = self._metrics().validation_failures
        for field, reason in failure_labels(details):
            failures.labels(field=field, reason=reason).inc()
        where = f"{scope.get('path', '?')} [{scope.get('method', '?')}]"
        log.warning("Rejected bad input to %s with 400: %s", where, summary(details))


class QuietValidationErrors(logging.Filter):
    """Drops BentoML's ERROR-with-traceback record for a ValidationError (already a 400)."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, ValidationError)


def quiet_bentoml_validation_tracebacks() -> None:
    logger = logging.getLogger(BENTOML_HTTP_LOGGER)
    if not any(isinstance(f, QuietValidationErrors) for f in logger.filters):
        logger.addFilter(QuietValidationErrors())
