"""Which failures of a call to MLflow are worth retrying.

Retrying a deterministic error (a bad parameter, a missing artifact, a bug) only repeats it, and
after registration it can repeat a side effect. Only what a later attempt can change counts as
transient: the connection failing or timing out, the server answering 5xx or 429, or MLflow
saying so itself.
"""

from __future__ import annotations

import re

# MLflow error codes that mean "try again later", not "your request is wrong". INTERNAL_ERROR is
# not one of them: it is also the code every MlflowException raised in the client gets by
# default, for errors that will happen again.
_TRANSIENT_CODES = {"TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"}
# MLflow's wording for an HTTP error whose body was not an MLflow error document.
_HTTP_STATUS = re.compile(r"failed with error code (\d{3})")


def is_transient(error: BaseException) -> bool:
    """Whether retrying the same call later can succeed."""
    from mlflow.exceptions import MlflowException, RestException
    from requests import exceptions as requests_errors

    network = (
        requests_errors.ConnectionError,
        requests_errors.Timeout,
        ConnectionError,
        TimeoutError,
    )
    # The MLflow client wraps a dropped connection in a plain MlflowException: look at the chain.
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, network):
            return True
        cause = cause.__cause__ or cause.__context__
    if isinstance(error, RestException):
        status = error.get_http_status_code()
        return status >= 500 or status == 429 or error.error_code in _TRANSIENT_CODES
    if isinstance(error, MlflowException):
        if error.error_code in _TRANSIENT_CODES:
            return True
        match = _HTTP_STATUS.search(error.message)
        return match is not None and (int(match[1]) >= 500 or int(match[1]) == 429)
    return False
