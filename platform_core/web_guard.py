"""Refuse what a web page could make the learner's browser send to the platform's own services.

The learner browses the web on the machine that runs the platform, and a page from any site can
make the browser send requests to ``127.0.0.1``. None of the services authenticates its callers,
so three checks stand in for that (serving, the drift monitor, the alert receiver and the flows
service's ``/health`` apply them; MLflow and Prefect have their own):

1. **Host**, against DNS rebinding: a page whose name the attacker then points at ``127.0.0.1``
   becomes same-origin with a service, so it can read answers and send JSON. Its requests still
   carry that name in ``Host``, so a Host that is a DNS name this service does not answer to gets
   **400**. The names it answers to: ``localhost``, the configured ``host`` when it is a name, and
   the name a Kubernetes Service gives it (``serving``, ``serving.<namespace>.svc``, with or
   without ``.cluster.local``; a cluster with another domain uses the first two) or
   ``service_hosts`` gives its peers. IP literals always pass:
   a browser sends an IP literal only when the page's URL holds one, which rebinding cannot
   forge, and inside a cluster the kubelet's probes and Prometheus's scrapes address a pod by
   its IP, which no list written in advance could hold. A missing Host passes too: browsers
   always send one.
2. **Origin**, against cross-site requests: browsers say which site a request comes from in
   ``Origin`` (on every POST, and on any cross-origin ``fetch``). One whose host is not a
   loopback address, the configured ``host`` or a name from rule 1 gets **403**, and so does
   ``null`` (a sandboxed page, or one that hides its origin). Unlike ``Host``, an IP literal here
   does not pass: a page can be served from a public address. Scripts, probes, Prometheus and
   Alertmanager send no Origin.
3. **Content type**, against cross-site forms: without a CORS preflight, which these services
   never answer, a page can POST only form data or ``text/plain``. So a POST, PUT, PATCH or
   DELETE must say ``application/json``, or get **415**. A request with no body and no Content-Type
   passes (``POST /check``, ``POST /incidents/forget``, which take none): no form can send one,
   and a page's script can only with the page's Origin attached, which rule 2 refuses when the
   page is another site's. So their callers need not name a content type.

GET requests that carry no Origin (health checks, Prometheus scrapes) meet only rule 1.
:class:`WebGuard` is the ASGI middleware; :func:`refusal` is the same check for a server that is
not ASGI (the flows service's ``/health`` runs on :mod:`http.server`).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from platform_core.settings import Settings

_STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The name cluster DNS gives a Service: `<service>.<namespace>.svc[.cluster.local]`. Neither
# suffix is a public one (`.local` is reserved), so no attacker can point such a name anywhere.
_CLUSTER_SUFFIXES = (".svc", ".svc.cluster.local")


def _split_host(value: str) -> str:
    """The host part of a ``Host`` value (``name``, ``name:port``, ``[v6]:port``), lower case."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    if value.count(":") == 1:
        value = value.split(":", 1)[0]
    return value.rstrip(".")


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


@dataclass(frozen=True)
class AllowedHosts:
    """The names one service answers to: ``service`` is its name on a cluster (its Service's),
    ``names`` the others (lower case)."""

    service: str
    names: frozenset[str]

    @classmethod
    def of(cls, settings: Settings, service: str) -> AllowedHosts:
        """For ``service`` (its name in the service list and on Kubernetes) under ``settings``."""
        names = {"localhost", settings.host, settings.service_hosts.get(service, "")}
        names.update(settings.allowed_hosts.get(service, []))
        return cls(service, frozenset(_split_host(n) for n in names if n))

    def knows(self, host: str) -> bool:
        """Whether ``host`` (a name, no port) is one of this service's names."""
        if host in self.names or host == self.service:
            return True
        namespaced = host.removeprefix(f"{self.service}.")
        return namespaced != host and any(
            namespaced.endswith(suffix) and namespaced.count(".") == suffix.count(".")
            for suffix in _CLUSTER_SUFFIXES
        )

    def host_allowed(self, value: str) -> bool:
        """Rule 1, for a ``Host`` header value."""
        host = _split_host(value)
        return _ip(host) is not None or self.knows(host)

    def origin_allowed(self, value: str) -> bool:
        """Rule 2, for an ``Origin`` header value."""
        try:
            host = urlsplit(value.strip().lower()).hostname
        except ValueError:  # "http://[not-an-address]"
            return False
        if not host:  # "null", or not a URL
            return False
        address = _ip(host)
        if address is not None:
            return address.is_loopback or host in self.names  # the configured host, if an IP
        return self.knows(host.rstrip("."))


@dataclass(frozen=True)
class Refusal:
    status: int
    error: str

    def body(self) -> bytes:
        return json.dumps({"error": self.error}).encode()


def refusal(allowed: AllowedHosts, method: str, headers: Mapping[str, str]) -> Refusal | None:
    """Why this request is refused, or None. ``headers`` has lower-case names."""
    host = headers.get("host")
    if host is not None and not allowed.host_allowed(host):
        return Refusal(
            400,
            f"Host {host!r} is not a name this service answers to, so the request is refused "
            "(a guard against DNS rebinding). Use the address `mlops-lab status` prints, such "
            "as 127.0.0.1 or localhost.",
        )
    origin = headers.get("origin")
    if origin is not None and not allowed.origin_allowed(origin):
        return Refusal(
            403,
            f"Cross-site request refused: it comes from a page at {origin!r}, not from this "
            "platform. Call the service from a script or a terminal (they send no Origin).",
        )
    if method.upper() in _STATE_CHANGING:
        content_type = headers.get("content-type")
        media_type = (content_type or "").split(";", 1)[0].strip().lower()
        has_body = (
            content_type is not None
            or headers.get("content-length", "0") != "0"
            or "transfer-encoding" in headers
        )
        if has_body and media_type != "application/json":
            return Refusal(
                415,
                f"{method.upper()} needs Content-Type: application/json, got "
                f"{content_type or 'a body of no declared type'}. Web pages on other sites can "
                "send forms and text/plain, never JSON, so only JSON is accepted.",
            )
    return None


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class WebGuard:
    """ASGI middleware: answers a refused HTTP request itself (JSON ``{"error": ...}``), passes
    the others on. Add it outside any middleware that counts bad input: a refused request is not
    a client's malformed data."""

    def __init__(self, app: ASGIApp, hosts: AllowedHosts) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {
                name.decode("latin-1").lower(): value.decode("latin-1")
                for name, value in scope["headers"]
            }
            refused = refusal(self.hosts, scope["method"], headers)
            if refused is not None:
                body = refused.body()
                await send(
                    {
                        "type": "http.response.start",
                        "status": refused.status,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
