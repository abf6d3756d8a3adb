"""How the monitoring services run: uvicorn on the platform's host, one log line per event."""

from __future__ import annotations

import logging

import uvicorn
from fastapi import FastAPI

from mlops_lab.settings import Settings


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
