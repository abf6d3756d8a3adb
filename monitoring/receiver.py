"""The alert receiver: Alertmanager webhooks in, Prefect retrain runs out.

Run by the local runtime as ``python -m monitoring.receiver``. Alertmanager sends

- alerts labelled ``action="retrain"`` (drift, degraded performance) to ``POST /alerts/retrain``:
  one incident starts one run of the ``retrain/retrain`` deployment (see
  :mod:`monitoring.incidents` for what counts as one incident);
- every other alert to ``POST /alerts/log``: written to this service's log, nothing else.

When the retrain cannot be started (Prefect down, deployment missing) the receiver logs why and
answers 503, so Alertmanager retries the notification with backoff: the retrain starts once the
problem is fixed, and the incident is not marked as handled before that.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import deque
from typing import Literal

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import arun_deployment
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel, ConfigDict, Field

from monitoring.incidents import Action, AlertInstance, Decision, IncidentBook, occurrence_key
from monitoring.webapp import configure_logging, serve, service_app
from platform_core.settings import Settings, get_settings
from platform_core.web_guard import AllowedHosts

log = logging.getLogger("mlops_lab.alert_receiver")

RETRAIN_DEPLOYMENT = "retrain/retrain"


class WebhookAlert(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    status: Literal["firing", "resolved"]
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    starts_at: str = Field(alias="startsAt")
    fingerprint: str

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "unnamed")


class Notification(BaseModel):
    """Alertmanager's webhook payload (version 4); fields this receiver does not use are ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    version: str
    group_key: str = Field(alias="groupKey")
    status: Literal["firing", "resolved"]
    receiver: str
    alerts: list[WebhookAlert]

    @property
    def alert_names(self) -> tuple[str, ...]:
        return tuple(sorted({alert.name for alert in self.alerts}))

    @property
    def firing(self) -> list[WebhookAlert]:
        return [alert for alert in self.alerts if alert.status == "firing"]


class RetrainUnavailable(Exception):
    pass


async def start_retrain(settings: Settings, reason: str, idempotency_key: str) -> FlowRun:
    """Create a run of the retrain deployment; the flows service picks it up."""
    try:
        async with PrefectClient(settings.prefect_api_url) as client:
            return await arun_deployment(
                RETRAIN_DEPLOYMENT,
                client=client,
                parameters={"reason": reason},
                timeout=0,
                # Prefect returns the existing run for a key it has seen: even a receiver that
                # lost its incident book cannot start the same incident's retrain twice.
                idempotency_key=idempotency_key,
                as_subflow=False,
            )
    except ObjectNotFound as error:
        raise RetrainUnavailable(
            f"Prefect at {settings.prefect_api_url} has no deployment {RETRAIN_DEPLOYMENT!r}. "
            "The `flows` service serves it: check `mlops-lab status` and `mlops-lab logs flows`."
        ) from error
    except (httpx.HTTPError, PrefectHTTPStatusError, OSError) as error:
        raise RetrainUnavailable(
            f"Prefect is not reachable at {settings.prefect_api_url} ({error}). "
            "Check `mlops-lab status` and `mlops-lab logs prefect`."
        ) from error
    except Exception as error:  # e.g. the deployment rejects the parameters: still a decision
        raise RetrainUnavailable(
            f"Prefect refused to start {RETRAIN_DEPLOYMENT!r}: {type(error).__name__}: {error}"
        ) from error


def _idempotency_key(group_key: str, instances: set[AlertInstance]) -> str:
    """The incident's own key (one occurrence of the group), hashed to Prefect's key length."""
    digest = hashlib.sha256(occurrence_key(group_key, instances).encode()).hexdigest()
    return f"alert-{digest[:32]}"


def _reason(notification: Notification) -> str:
    parts = [
        f"{alert.name}: {alert.annotations.get('summary', 'firing')}"
        for alert in notification.firing
    ]
    return "alert " + "; ".join(parts)


class Receiver:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.book = IncidentBook(
            settings.paths.alertmanager / "receiver" / "incidents.json",
            settings.retrain_cooldown_s,
        )
        self.recent: deque[dict] = deque(maxlen=200)
        # One notification at a time: two concurrent ones for a new incident must not both start.
        self.lock = asyncio.Lock()
        self.registry = CollectorRegistry()
        self.notifications = Counter(
            "alert_receiver_notifications",
            "Alertmanager notifications received, by route and group status.",
            ["route", "status"],
            registry=self.registry,
        )
        self.decisions = Counter(
            "alert_receiver_retrain_decisions",
            "What the receiver decided about retrain notifications.",
            ["decision"],
            registry=self.registry,
        )
        for route in ("retrain", "log"):
            for status in ("firing", "resolved"):
                self.notifications.labels(route=route, status=status)
        for action in Action:
            self.decisions.labels(decision=action.value)

    async def retrain(self, notification: Notification) -> tuple[int, Decision]:
        self.notifications.labels(route="retrain", status=notification.status).inc()
        names = notification.alert_names
        async with self.lock:
            if notification.status == "resolved":
                return 200, self._record(self.book.on_resolved(notification.group_key, names))
            instances = {AlertInstance(a.fingerprint, a.starts_at) for a in notification.firing}
            decision = self.book.on_firing(notification.group_key, names, instances)
            if decision.action != Action.START:
                return 200, self._record(decision)
            try:
                run = await start_retrain(
                    self.settings,
                    _reason(notification),
                    _idempotency_key(notification.group_key, instances),
                )
            except RetrainUnavailable as error:
                failed = Decision(Action.FAILED, notification.group_key, names, str(error))
                return 503, self._record(failed)
            started = self.book.record_start(decision, instances, str(run.id))
            return 200, self._record(started)

    def log_only(self, notification: Notification) -> None:
        self.notifications.labels(route="log", status=notification.status).inc()
        for alert in notification.alerts:
            log.warning(
                "alert %s %s %s: %s",
                alert.name,
                alert.status,
                {k: v for k, v in sorted(alert.labels.items()) if k != "alertname"},
                alert.annotations.get("summary", ""),
            )

    def _record(self, decision: Decision) -> Decision:
        self.decisions.labels(decision=decision.action.value).inc()
        self.recent.append(decision.to_dict())
        level = logging.ERROR if decision.action == Action.FAILED else logging.INFO
        log.log(
            level,
            "retrain decision=%s alerts=%s group=%s: %s",
            decision.action.value,
            ",".join(decision.alerts),
            decision.group_key,
            decision.reason,
        )
        return decision


def create_app(settings: Settings) -> FastAPI:
    receiver = Receiver(settings)
    hosts = AllowedHosts.of(settings, "alert-receiver")
    app = service_app("mlops-lab alert receiver", receiver.registry, hosts)
    app.state.receiver = receiver

    @app.get("/decisions")
    def decisions() -> list[dict]:
        """The latest decisions, newest last (also in this service's log)."""
        return list(receiver.recent)

    @app.get("/policy")
    def policy() -> dict:
        """What turns alerts into retrains here: what an operator checks after a change."""
        return {
            "retrain_cooldown_s": receiver.book.cooldown_s,
            "incident_max_open_s": receiver.book.max_open_s,
            "deployment": RETRAIN_DEPLOYMENT,
        }

    @app.post("/incidents/forget")
    async def forget() -> dict:
        """Close the open incidents and end the cooldown (a lab reset calls this)."""
        async with receiver.lock:
            closed = receiver.book.forget()
        log.info("Incident book cleared: %d open incident(s) closed, cooldown ended.", closed)
        return {"closed": closed}

    @app.post("/alerts/retrain")
    async def retrain(notification: Notification) -> JSONResponse:
        status, decision = await receiver.retrain(notification)
        return JSONResponse({"decision": decision.to_dict()}, status_code=status)

    @app.post("/alerts/log")
    def log_alerts(notification: Notification) -> dict:
        receiver.log_only(notification)
        return {"logged": len(notification.alerts)}

    return app


def main() -> None:
    configure_logging()
    settings = get_settings()
    log.info(
        "Receiving Alertmanager webhooks; retrain runs go to %s (deployment %s, cooldown %ss)",
        settings.prefect_api_url,
        RETRAIN_DEPLOYMENT,
        settings.retrain_cooldown_s,
    )
    serve(create_app(settings), settings, settings.alert_receiver_port)


if __name__ == "__main__":
    main()
