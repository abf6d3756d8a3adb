"""Health probes: one HTTP GET per service, answered 2xx within a short timeout."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Health:
    healthy: bool
    detail: str


def probe(url: str, timeout_s: float = 2.0) -> Health:
    try:
        response = httpx.get(url, timeout=timeout_s)
    except httpx.HTTPError as error:
        return Health(False, str(error).strip() or type(error).__name__)
    if response.is_success:
        return Health(True, f"HTTP {response.status_code}")
    return Health(False, f"HTTP {response.status_code}")


def probe_all(urls: dict[str, str], timeout_s: float = 2.0) -> dict[str, Health]:
    """Probe in parallel so `status` takes one timeout, not one per service."""
    if not urls:
        return {}
    with ThreadPoolExecutor(max_workers=len(urls)) as pool:
        futures = {name: pool.submit(probe, url, timeout_s) for name, url in urls.items()}
        return {name: future.result() for name, future in futures.items()}
