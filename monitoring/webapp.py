"""How the monitoring services run: uvicorn on the platform's host, behind the web guard, one log
line per event."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import uvicorn
from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from platform_core.settings import Settings
from platform_core.web_guard import AllowedHosts, WebGuard

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def service_app(
    title: str, registry: CollectorRegistry, hosts: AllowedHosts, lifespan: Lifespan | None = None
) -> FastAPI:
    """An app with what every monitoring service answers: liveness on /healthz (what `up` and
    supervisord probe) and its own metrics registry on /metrics (what Prometheus scrapes). Every
    request passes :mod:`platform_core.web_guard` first, for the names in ``hosts``."""
    app = FastAPI(title=title, lifespan=lifespan)
    app.add_middleware(WebGuard, hosts=hosts)

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "alive"}

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


def configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Client libraries log every HTTP request at INFO: one line per probe would bury the events.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def serve(app: FastAPI, settings: Settings, port: int) -> None:
    uvicorn.run(
        app,
        host=settings.host,
        port=port,
        # Prometheus scrapes every few seconds: access lines would drown what the service says.
        access_log=False,
        log_level="info",
    )
