"""How a drift check ends; free of heavy imports, so the monitor can serve it at once."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    OK = "ok"
    NOT_ENOUGH_DATA = "not_enough_data"
    NO_CHAMPION = "no_champion"
    REFERENCE_MISSING = "reference_missing"
    MLFLOW_UNREACHABLE = "mlflow_unreachable"
    PREDICTION_LOG_UNREACHABLE = "prediction_log_unreachable"
    ERROR = "error"


# A young platform legitimately has no champion or no traffic yet: the monitor is healthy then.
HEALTHY = frozenset({Status.OK, Status.NOT_ENOUGH_DATA, Status.NO_CHAMPION})
