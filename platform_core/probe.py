"""Is a server there? One HTTP GET, answered 2xx within a short timeout.

Every part that talks to MLflow or Prefect asks this first: their clients retry an unreachable
server for minutes, and "MLflow is not reachable at URL" said at once is worth more than a hang.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from platform_core import http_calls
from platform_core.errors import PlatformError
from platform_core.settings import Settings


@dataclass(frozen=True)
class Health:
    healthy: bool
    detail: str
    answered: bool = False  # an HTTP answer came (of any status), not a connection failure


def probe(url: str, timeout_s: float = 2.0, auth: httpx.Auth | None = None) -> Health:
    try:
        response = http_calls.get(url, timeout=timeout_s, auth=auth)
    except httpx.HTTPError as error:
        return Health(False, str(error).strip() or type(error).__name__)
    return Health(response.is_success, f"HTTP {response.status_code}", answered=True)


def probe_all(
    urls: dict[str, str],
    timeout_s: float = 2.0,
    auth: Mapping[str, httpx.Auth | None] | None = None,
) -> dict[str, Health]:
    """Probe in parallel so `status` takes one timeout, not one per service; ``auth`` holds the
    credentials of those that ask for some, by name."""
    if not urls:
        return {}
    auth = auth or {}
    with ThreadPoolExecutor(max_workers=len(urls)) as pool:
        futures = {
            name: pool.submit(probe, url, timeout_s, auth.get(name)) for name, url in urls.items()
        }
        return {name: future.result() for name, future in futures.items()}


class Unreachable(PlatformError):
    def __init__(self, what: str, url: str, detail: str) -> None:
        super().__init__(
            f"{what} is not reachable at {url} ({detail}).",
            hint="Run `make up` to start the platform, or `make status` to see what is wrong.",
        )


class MlflowUnavailable(Unreachable):
    def __init__(self, settings: Settings, detail: str) -> None:
        super().__init__("MLflow", settings.mlflow_url, detail)


class PrefectUnavailable(Unreachable):
    def __init__(self, settings: Settings, detail: str) -> None:
        super().__init__("Prefect", settings.prefect_api_url, detail)


def require_mlflow(settings: Settings, timeout_s: float = 5.0) -> None:
    if not (health := probe(f"{settings.mlflow_url}/health", timeout_s=timeout_s)).healthy:
        raise MlflowUnavailable(settings, health.detail)


def require_prefect(settings: Settings, timeout_s: float = 5.0) -> None:
    if not (health := probe(f"{settings.prefect_api_url}/health", timeout_s=timeout_s)).healthy:
        raise PrefectUnavailable(settings, health.detail)
