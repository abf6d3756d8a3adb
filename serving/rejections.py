"""Bad input, counted by field and logged as one line instead of a server-error traceback.

BentoML answers every pydantic ``ValidationError`` with a 400, whether it came from the request's
shape (malformed JSON, an empty or oversized ``records`` list) or from our per-model checks, and
logs it at ERROR with a full traceback. A client's mistake is not a server error, and a traceback
per bad request buries real failures. This filter sits on the logger BentoML reports them to: the
one place that sees every rejected input. It counts each rejection in
``serving_validation_failures_total{field, reason}`` and rewrites the record as a WARNING naming
the fields, which is what an operator needs to find the misbehaving client.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError

from serving.metrics import ServingMetrics

# Where BentoML's HTTP layer logs the exceptions it turned into responses.
BENTOML_HTTP_LOGGER = "bentoml._internal.server.http_app"
_MAX_FIELDS_IN_LOG = 5


def field_of(loc: tuple) -> str:
    """The field an error is about: ``("records", 3, "age")`` -> ``age``; no field -> ``body``."""
    names = [part for part in loc if isinstance(part, str)]
    return names[-1] if names else "body"


def failure_labels(error: ValidationError) -> set[tuple[str, str]]:
    return {(field_of(tuple(detail["loc"])), detail["type"]) for detail in error.errors()}


class RejectedInputFilter(logging.Filter):
    def __init__(self, metrics: ServingMetrics) -> None:
        super().__init__()
        self.metrics = metrics

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, ValidationError):
            return True
        labels = failure_labels(error)
        for field, reason in labels:
            self.metrics.validation_failures.labels(field=field, reason=reason).inc()
        details = error.errors(include_url=False)
        shown = "; ".join(
            f"{'.'.join(str(p) for p in d['loc']) or 'body'}: {d['msg']}"
            for d in details[:_MAX_FIELDS_IN_LOG]
        )
        hidden = len(details) - _MAX_FIELDS_IN_LOG
        more = f" (+{hidden} more)" if hidden > 0 else ""
        # BentoML's message is "Exception on <path> [<method>]".
        where = record.getMessage().removeprefix("Exception on ")
        record.msg = "Rejected bad input to %s with 400: %s%s"
        record.args = (where, shown, more)
        record.levelno = logging.WARNING
        record.levelname = logging.getLevelName(logging.WARNING)
        record.exc_info = None
        record.exc_text = None
        return True


def install(metrics: ServingMetrics) -> RejectedInputFilter:
    rejection_filter = RejectedInputFilter(metrics)
    logging.getLogger(BENTOML_HTTP_LOGGER).addFilter(rejection_filter)
    return rejection_filter
