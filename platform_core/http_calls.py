"""One-off HTTP calls that share one TLS context per process.

``httpx.get(url)`` builds a client for the call, and the client builds a TLS context even for an
``http://`` URL: it reads the whole CA bundle, about 20 ms of CPU, where the call itself takes
about 1 ms. The drift monitor asks MLflow's /health before every check, and the lab checks, the
CLI's waits and the probes poll Prometheus and serving several times a second, so that was most
of their CPU. These functions take httpx's arguments and answer as httpx does; each call still
opens its own connection (a probe must see a server that went away, not a pooled socket).
"""

from __future__ import annotations

import functools
import ssl
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The TLS context httpx would build for a call (its CA bundle, ``SSL_CERT_FILE`` honoured),
    built once."""
    return httpx.create_ssl_context()


def request(method: str, url: str, **options: Any) -> httpx.Response:
    return httpx.request(method, url, verify=tls_context(), **options)


def get(url: str, **options: Any) -> httpx.Response:
    return request("GET", url, **options)


def post(url: str, **options: Any) -> httpx.Response:
    return request("POST", url, **options)


def prefect_client() -> SyncPrefectClient:
    """Prefect's synchronous client, to be used as a context manager. Prefect builds a TLS
    context from its CA bundle for every client (the same 20 ms); this one is built once per
    process, from the same bundle (``PREFECT_API_SSL_CERT_FILE``, else certifi's)."""
    import certifi
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_SSL_CERT_FILE, PREFECT_API_TLS_INSECURE_SKIP_VERIFY

    if PREFECT_API_TLS_INSECURE_SKIP_VERIFY.value():
        return get_client(sync_client=True)  # Prefect's own unverified context
    context = _tls_context_of(PREFECT_API_SSL_CERT_FILE.value() or certifi.where())
    return get_client(httpx_settings={"verify": context}, sync_client=True)


@functools.cache
def _tls_context_of(ca_file: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file)
