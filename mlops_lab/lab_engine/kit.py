"""What a lab works with: the running platform, seen through the same settings as every service.

Labs break and check the platform only through what a learner could also use: the registry, the
serving API, Prometheus, the drift monitor, the prediction log, service logs and configuration
files. :class:`LabContext` gathers those so each ``lab.py`` stays a page long.
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from mlops_lab.front_end import config as front_end_config
from mlops_lab.front_end.config import FrontEndConfig
from mlops_lab.runtime.base import ProcessState, Runtime, not_running
from mlops_lab.runtime.local.runtime import LocalRuntime
from platform_core import http_calls, mlflow_client, monitoring_auth, promql
from platform_core.errors import PlatformError
from platform_core.settings import Settings
from platform_core.waiting import TimedOut, poll

FRONT_END = "front-end"


def active_runs(runs: list) -> list:
    """The flow runs that have not ended (Prefect's ``State.is_final``): scheduled (Late and
    AwaitingRetry are Scheduled states), pending, running, paused or cancelling. Any of them may
    still register and promote a model."""
    return [r for r in runs if r.state and not r.state.is_final()]


# Flow-run events that mean the run did not get on: reacting to them is a retry, not a loop.
_FAILURE_EVENTS = {"Failed", "Crashed", "TimedOut", "Cancelled", "Cancelling"}


def _runs(action, deployment_id) -> bool:
    """Whether an automation's action starts a run of the deployment: named, or inferred from
    the event (a flow run's event names its own deployment)."""
    if getattr(action, "type", None) != "run-deployment":
        return False
    return action.source == "inferred" or action.deployment_id == deployment_id


def _fires_on_retrain_progress(trigger, related: list[dict[str, str]]) -> bool:
    """Whether ``trigger`` reacts to a retrain run getting on, that run's event carrying
    ``related`` (what the Prefect server relates a flow run's state event to)."""
    nested = getattr(trigger, "triggers", None)
    if nested is not None:  # a compound or sequence trigger: any part may be the loop
        return any(_fires_on_retrain_progress(t, related) for t in nested)
    expect = getattr(trigger, "expect", None)
    if expect is None:  # a metric trigger: not a reaction to a run's events
        return False
    if not any(_a_run_getting_on(event) for event in (expect or {"*"})):
        return False
    return _covers(getattr(trigger, "match_related", None), related) and _may_be_the_run(
        getattr(trigger, "match", None)
    )


def _a_run_getting_on(event: str) -> bool:
    if event in ("*", "prefect.*", "prefect.flow-run.*"):
        return True
    state = event.removeprefix("prefect.flow-run.")
    return state != event and state not in _FAILURE_EVENTS


def _labels(specification) -> list[tuple[str, list[str]]]:
    """A trigger's resource specification as (label, accepted patterns) pairs."""
    labels = dict(getattr(specification, "root", specification) or {})
    return [(k, [v] if isinstance(v, str) else list(v)) for k, v in labels.items()]


def _label_matches(pattern: str, value: str | None) -> bool:
    """A label's value against a trigger's pattern, as the Prefect server compares them: a glob,
    negated by a leading ``!``; an absent label matches nothing."""
    if value is None:
        return False
    negated = pattern.startswith("!")
    return fnmatch.fnmatchcase(value, pattern.removeprefix("!")) != negated


def _covers(specification, related: list[dict[str, str]]) -> bool:
    """Whether a trigger's ``match_related`` selects an event related to ``related``: each of
    its specifications must match one related resource in every label it names."""
    specs = specification if isinstance(specification, list) else [specification]
    return all(not _labels(s) or any(_selects(s, r) for r in related) for s in specs)


def _selects(specification, resource: dict[str, str]) -> bool:
    return all(
        any(_label_matches(p, resource.get(label)) for p in patterns)
        for label, patterns in _labels(specification)
    )


def _may_be_the_run(specification) -> bool:
    """Whether a trigger's ``match`` (about the flow run itself) may select a retrain run's
    event: only a ``prefect.resource.id`` narrowed to something other than flow runs rules it
    out (a new run's id is not known before it exists)."""
    return all(
        any(v == "*" or v.startswith("prefect.flow-run.") for v in values)
        for label, values in _labels(specification)
        if label == "prefect.resource.id"
    )


def _retrain_related(deployment, flow, automation) -> list[dict[str, str]]:
    """What the Prefect server relates the state events of a retrain run ``automation`` started
    to (``prefect.server.models.events``): its flow, its deployment, their tags, and its creator.
    A trigger narrowed to any of them (as the UI narrows by flow) still sees its own runs."""
    tags = sorted({*(deployment.tags or []), *(flow.tags or [])})
    return [
        {
            "prefect.resource.id": f"prefect.flow.{flow.id}",
            "prefect.resource.role": "flow",
            "prefect.resource.name": flow.name,
        },
        {
            "prefect.resource.id": f"prefect.deployment.{deployment.id}",
            "prefect.resource.role": "deployment",
            "prefect.resource.name": deployment.name,
        },
        *(
            {"prefect.resource.id": f"prefect.tag.{t}", "prefect.resource.role": "tag"}
            for t in tags
        ),
        {
            "prefect.resource.id": f"prefect.automation.{automation.id}",
            "prefect.resource.role": "creator",
            "prefect.resource.name": automation.name,
        },
    ]


def _started(run) -> bool:
    """Whether the run's process has started: cancelling it is not what a reset or a fix does."""
    return run.state.is_running() or run.state.is_cancelling()


@dataclass(frozen=True)
class Condition:
    """One thing a check looks at: passed or not, and in words a learner understands why."""

    name: str
    passed: bool
    detail: str

    @classmethod
    def of(cls, name: str, passed: bool, ok: str, not_ok: str) -> Condition:
        return cls(name, passed, ok if passed else not_ok)


CAUSE = "cause"
# In a lab's recorded state: the seed it was started with, and the number (from 1) of the variant
# the seed drew. Never the variant's parameters: they name the answer, and the progress file is
# the learner's to open.
SEED = "seed"
VARIANT = "variant"


def variant_of(variants: Sequence[dict[str, Any]], state: dict) -> dict[str, Any]:
    """The parameters of the variant a lab's recorded state was started in: its ``VARIANTS``
    entry by the number the state records. A state without one (a lab started before it had
    variants, or not started) was the first. Copies of the parameters an older release recorded
    beside the number are not read: the number says which."""
    number = state.get(VARIANT)
    if not isinstance(number, int) or not 1 <= number <= len(variants):
        number = 1
    return dict(variants[number - 1])


def _matches(matcher: dict[str, Any], labels: dict[str, str]) -> bool:
    """One Alertmanager matcher against a label set (a missing label is the empty string)."""
    value = labels.get(matcher["name"], "")
    hit = (
        re.fullmatch(matcher["value"], value) is not None
        if matcher.get("isRegex")
        else value == matcher["value"]
    )
    return hit == matcher.get("isEqual", True)


def cause_reported(lab_id: str, answers: dict[str, str], *names: str) -> Condition:
    """Whether the learner reported the cause (`mlops-lab lab answer NN cause="..."`) and the
    report names what is at fault (any of ``names``, as the platform spells it).

    Labs whose honest fix is a re-sync from the source of truth (a restart renders the file again,
    deleting an override restores the default) ask for this too: the re-sync is one command, the
    diagnosis is the lesson, and a blind restart or a wiped configuration has none."""
    said = answers.get(CAUSE, "").strip()
    named = bool(said) and any(name.lower() in said.lower() for name in names)
    if not said:
        detail = (
            f'no report yet: `mlops-lab lab answer {lab_id} cause="..."` with what you found at '
            "fault, spelled as the platform shows it"
        )
    else:
        detail = f"your report {said!r} does not name what is at fault, as the platform spells it"
    return Condition("you reported the cause", named, f"your report: {said!r}" if named else detail)


class LabContext:
    def __init__(
        self, settings: Settings, console: Console | None = None, runtime: Runtime | None = None
    ) -> None:
        self.settings = settings
        self.console = console or Console(stderr=True)
        # The platform's runtime: the local one, or a Kubernetes one (the same interface).
        self.runtime: Runtime = runtime or LocalRuntime(settings, console=self.console)
        self._client = None
        self._engine = None

    # ---- output -------------------------------------------------------------------------------

    def say(self, message: str) -> None:
        self.console.print(message, highlight=False)

    # ---- registry -----------------------------------------------------------------------------

    @property
    def mlflow(self):
        if self._client is None:
            from platform_core import contract
            from platform_core.probe import require_mlflow

            require_mlflow(self.settings)
            mlflow_client.apply(mlflow_client.PIPELINE)
            self._client = contract.client_for(self.settings)
        return self._client

    def champion(self):
        from platform_core import contract

        return contract.champion(self.mlflow, self.settings)

    def require_champion(self):
        """The champion, for the steps that cannot go on without one (a lab's start, a fix)."""
        champion = self.champion()
        if champion is None:
            raise PlatformError(
                f"No champion yet: no version of {self.settings.model_name} has the "
                f"@{self.settings.champion_alias} alias.",
                hint="`make train` trains one, and the quality gate promotes it.",
            )
        return champion

    def versions(self) -> list:
        from platform_core import contract

        name = contract.filter_value(self.settings.model_name)
        return self.mlflow.search_model_versions(f"name = {name}")

    def mlflow_answers(self, healthy: bool) -> Condition:
        """The condition a registry lab ends on first: MLflow answers its health check."""
        return Condition.of(
            "MLflow is healthy",
            healthy,
            "MLflow answers /health",
            f"MLflow does not answer at {self.settings.mlflow_url} "
            f"(process {self.process('mlflow').state})",
        )

    def serving_reaches_registry(self) -> Condition:
        """Serving says, through Prometheus, that it reaches MLflow again."""
        reachable = self.query("serving_registry_reachable")
        return Condition.of(
            "serving reaches the registry again",
            bool(reachable) and all(r["value"] == 1 for r in reachable),
            "serving_registry_reachable is 1",
            "serving_registry_reachable is not 1 yet (serving polls every "
            f"{self.settings.alias_poll_interval_s:g}s; Prometheus scrapes after that)",
        )

    def mlflow_healthy(self) -> bool:
        from platform_core.probe import probe

        return probe(f"{self.settings.mlflow_url}/health").healthy

    @staticmethod
    def versions_lost(before: dict[str, dict], now: dict[str, dict]) -> list[str]:
        """The versions of inventory ``before`` that ``now`` lacks, or holds as another version
        under the same number (another run, source or creation time). Aliases are left out:
        they may move for a good reason."""
        return [
            number
            for number, found in before.items()
            if (again := now.get(number)) is None
            or any(again.get(k) != v for k, v in found.items() if k != "aliases")
        ]

    def version_inventory(self) -> dict[str, dict]:
        """Every version of the platform's model, by number: its aliases and what makes it that
        version (its run and artifacts, its creation time). A version re-registered under the
        same number in a new store is another version. Empty when not even the registered
        model exists."""
        versions = self.versions()
        if not versions:
            return {}
        # A version found by search carries no aliases: the registered model lists them.
        registered = self.mlflow.get_registered_model(self.settings.model_name)
        aliases = {a: str(v) for a, v in (registered.aliases or {}).items()}
        return {
            str(v.version): {
                "aliases": sorted(a for a, of in aliases.items() if of == str(v.version)),
                "run_id": v.run_id,
                "source": v.source,
                "created": v.creation_timestamp,
            }
            for v in versions
        }

    # ---- serving ------------------------------------------------------------------------------

    @property
    def serving_url(self) -> str:
        return self.settings.url(self.settings.serving_port)

    def _to_serving(self, send: Callable[[], httpx.Response], attempts: int = 3) -> httpx.Response:
        """``send()``, retried after the runtime reconnects the host to serving. On the kube
        runtime the host reaches serving through `kubectl port-forward`, bound to one pod: when a
        lab replaces serving's pods the old forward drops the next connection and exits, and
        ``reconnect`` starts a new one (locally it has nothing to do, and the retry is not made)."""
        for attempt in range(attempts):
            try:
                return send()
            except httpx.TransportError:
                if attempt + 1 == attempts:
                    raise
                time.sleep(2.0)  # the broken forward exits on the failed connection
                if not self.runtime.reconnect():
                    raise
        raise AssertionError("unreachable")

    def predict(self, records: list[dict[str, Any]]) -> httpx.Response:
        return self._to_serving(
            lambda: http_calls.post(
                f"{self.serving_url}/predict", json={"records": records}, timeout=10
            )
        )

    def feedback(self, labels: list[dict[str, Any]]) -> httpx.Response:
        """Report outcomes of earlier predictions, as the front end does."""
        return self._to_serving(
            lambda: http_calls.post(
                f"{self.serving_url}/feedback", json={"labels": labels}, timeout=30
            )
        )

    def serving_ready(self) -> tuple[bool, str]:
        try:
            response = self._to_serving(
                lambda: http_calls.get(f"{self.serving_url}/readyz", timeout=5)
            )
        except httpx.HTTPError as error:
            return False, f"serving does not answer at {self.serving_url} ({type(error).__name__})"
        if response.status_code == 200:
            return True, "serving is ready"
        return False, response.text.strip()[:300] or f"HTTP {response.status_code}"

    def sample_records(self, n: int = 3, seed: int = 11) -> list[dict[str, Any]]:
        from pipelines import data
        from serving.schema import records_from_frame

        return records_from_frame(data.generate(n, "baseline", seed=seed), data.FEATURE_NAMES)

    # ---- Prometheus ---------------------------------------------------------------------------

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant PromQL query: each result's labels (``metric``) and float ``value``."""
        return promql.query(self.settings, expr)

    def query_value(self, expr: str) -> float | None:
        """The largest value an instant query returns, None when it returns none or only NaN
        (a quantile or a ratio over a window that holds no sample)."""
        values = [r["value"] for r in self.query(expr) if not math.isnan(r["value"])]
        return max(values) if values else None

    def recorded_since(self, selector: str, since: float) -> bool:
        """Whether Prometheus scraped ``selector`` (a 0/1 gauge) at 1 since ``since``: the
        evidence that the platform saw an incident, kept after the incident is over."""
        seconds = max(1, math.ceil(time.time() - since))
        return bool(self.query(f"max_over_time({selector}[{seconds}s]) == 1"))

    def firing(self, alertname: str, **labels: str) -> list[dict[str, str]]:
        """Label sets of the alerts with this name that fire now."""
        matchers = "".join(f',{k}="{v}"' for k, v in labels.items())
        results = self.query(f'ALERTS{{alertname="{alertname}",alertstate="firing"{matchers}}}')
        return [r["metric"] for r in results]

    def targets(self) -> list[dict[str, Any]]:
        return self.prometheus_api("/api/v1/targets")["activeTargets"]

    def rule_groups(self) -> list[dict[str, Any]]:
        """The rule groups Prometheus runs now (its rules page): what it loaded at its last start
        or reload, which need not be what its files say since."""
        return self.prometheus_api("/api/v1/rules")["groups"]

    def prometheus_api(self, path: str) -> Any:
        """The ``data`` of one of Prometheus's API endpoints (``/api/v1/...``)."""
        response = http_calls.get(
            f"{self.settings.prometheus_url}{path}",
            timeout=10,
            auth=monitoring_auth.auth(self.settings),
        )
        response.raise_for_status()
        return response.json()["data"]

    # ---- Alertmanager -------------------------------------------------------------------------

    def _alertmanager(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = http_calls.request(
            method,
            f"{self.settings.alertmanager_url}/api/v2{path}",
            timeout=10,
            auth=monitoring_auth.auth(self.settings),
            **kwargs,
        )
        response.raise_for_status()
        return response

    def silence(
        self, labels: dict[str, str], minutes: float, comment: str, by: str = "mlops-lab"
    ) -> str:
        """Mute the alerts with these labels in Alertmanager for ``minutes`` (they still fire in
        Prometheus, and no notification of them goes out); returns the silence's id."""
        now = datetime.now(UTC)
        body = {
            "matchers": [
                {"name": name, "value": value, "isRegex": False, "isEqual": True}
                for name, value in labels.items()
            ],
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(minutes=minutes)).isoformat(),
            "createdBy": by,
            "comment": comment,
        }
        return str(self._alertmanager("POST", "/silences", json=body).json()["silenceID"])

    def expire_silence(self, silence_id: str) -> None:
        self._alertmanager("DELETE", f"/silence/{silence_id}")

    def silences_of(self, alert: dict[str, str]) -> list[dict[str, Any]]:
        """The active silences that mute an alert with these labels (every matcher matches)."""
        active = [
            s
            for s in self._alertmanager("GET", "/silences").json()
            if s.get("status", {}).get("state") == "active"
        ]
        return [s for s in active if all(_matches(m, alert) for m in s.get("matchers", []))]

    def held_alerts(self, **labels: str) -> list[dict[str, Any]]:
        """The alerts with these labels Alertmanager holds unresolved, silenced ones included."""
        matchers = [f'{name}="{value}"' for name, value in labels.items()]
        return self._alertmanager("GET", "/alerts", params={"filter": matchers}).json()

    # ---- alert receiver -----------------------------------------------------------------------

    def forget_incidents(self) -> int:
        """Close the alert receiver's open incidents and end its retrain cooldown; returns how
        many were open."""
        url = self.settings.url(self.settings.alert_receiver_port, "/incidents/forget")
        response = http_calls.post(url, timeout=10)
        response.raise_for_status()
        return int(response.json()["closed"])

    # ---- drift monitor ------------------------------------------------------------------------

    def drift_status(self) -> dict[str, Any]:
        """The drift monitor's last check (``/status``)."""
        return self._drift_monitor("GET", "/status", timeout_s=10)

    def check_drift_now(self) -> dict[str, Any]:
        """A drift check run now (the monitor's ``POST /check``): unlike ``/status``, a result
        that has seen the latest traffic."""
        return self._drift_monitor("POST", "/check", timeout_s=120)

    def _drift_monitor(self, method: str, path: str, timeout_s: float) -> dict[str, Any]:
        """A check's document from the drift monitor, or one saying it did not answer."""
        url = self.settings.url(self.settings.drift_monitor_port, path)
        try:
            return http_calls.request(method, url, timeout=timeout_s).json()
        except (httpx.HTTPError, ValueError) as error:
            return {"status": "unreachable", "message": f"{url}: {error}"}

    # ---- prediction log -----------------------------------------------------------------------

    def log_engine(self):
        if self._engine is None:
            from platform_core import prediction_log

            self._engine = prediction_log.connect(self.runtime.prediction_log_url())
        return self._engine

    def logged(self, since: float, version: str | None = None, labelled: bool = False):
        """Logged answers of the platform's model since a time (a DataFrame: features,
        prediction, probability, label, model_version, created_at), oldest first. A rollout
        candidate's shadow rows are not answers, so they are left out."""
        import pandas as pd
        import sqlalchemy as sa

        from platform_core.prediction_log import ANSWERED
        from platform_core.prediction_log import predictions as table

        query = sa.select(table).where(
            table.c.model_name == self.settings.model_name,
            table.c.created_at >= datetime.fromtimestamp(since, UTC),
            ANSWERED,
        )
        if version is not None:
            query = query.where(table.c.model_version == str(version))
        if labelled:
            query = query.where(table.c.label.is_not(None))
        with self.log_engine().connect() as conn:
            rows = conn.execute(query.order_by(table.c.id)).mappings().all()
        if not rows:
            return pd.DataFrame()
        features = pd.DataFrame([json.loads(row["features"]) for row in rows])
        meta = pd.DataFrame([{k: v for k, v in row.items() if k != "features"} for row in rows])
        # SQLite hands back naive datetimes: the log writes UTC, so say so.
        meta["created_at"] = pd.to_datetime(meta["created_at"], utc=True)
        return pd.concat([features, meta], axis=1)

    @staticmethod
    def promoted_at(version) -> float | None:
        """When a version last became champion (the registry's promoted_at tag), if it did."""
        from pipelines.registry import TAG_PROMOTED_AT

        stamp = (version.tags or {}).get(TAG_PROMOTED_AT) if version is not None else None
        return datetime.fromisoformat(stamp).timestamp() if stamp else None

    def live_auc(self, version: str, since: float) -> tuple[float | None, int]:
        """ROC AUC of a version's answers against their feedback labels since a time, and how
        many labelled answers that is (None while there are too few, or one class only): the
        drift monitor's own measure, on one version's answers."""
        from monitoring.performance import measure

        frame = self.logged(since, version=version, labelled=True)
        performance = measure(frame, self.settings.performance_min_labels)
        return performance.roc_auc, performance.labelled_rows

    # ---- processes and configuration ----------------------------------------------------------

    def process(self, name: str) -> ProcessState:
        return self.runtime.processes().get(name) or not_running(name)

    def restart(self, name: str, wait: bool = True) -> None:
        """Render the service's configuration again and restart it (`mlops-lab restart`)."""
        self.runtime.restart(name, wait=wait)

    def override(self, service: str, values: dict[str, str], wait: bool = True) -> None:
        """Change one service's configuration and apply it, as an operator would (the runtime
        says where: a file beside the service locally, the Deployment's environment on a
        cluster)."""
        self.runtime.set_override(service, values, wait=wait)

    def clear_overrides(self) -> list[str]:
        """Remove every service's configuration override and apply that; returns the services
        that had one."""
        return self.runtime.clear_overrides()

    def reload(self, service: str) -> None:
        """Make a service read its configuration again without restarting it."""
        self.runtime.reload(service)

    # ---- the simulated front end --------------------------------------------------------------

    @property
    def front_end_path(self) -> Path:
        return front_end_config.config_path(self.settings)

    def front_end(self) -> FrontEndConfig:
        """The front end's configuration now: its file, or the platform's default."""
        if not self.front_end_path.exists():
            return self.default_front_end()
        return front_end_config.read(self.front_end_path)

    def set_front_end(self, **changes: Any) -> None:
        config = self.front_end().model_copy(update=changes)
        front_end_config.write(self.front_end_path, config)

    def default_front_end(self) -> FrontEndConfig:
        return FrontEndConfig(rate_per_s=self.settings.front_end_rate_per_s)

    def start_front_end(self) -> None:
        if not self.front_end_path.exists():
            front_end_config.write(self.front_end_path, self.default_front_end())
        self.runtime.start_on_demand(FRONT_END)

    def stop_front_end(self) -> None:
        self.runtime.stop_on_demand(FRONT_END)

    def front_end_status(self) -> dict[str, Any]:
        url = self.settings.url(self.settings.front_end_port, "/status")
        try:
            return http_calls.get(url, timeout=5).json()
        except (httpx.HTTPError, ValueError):
            return {}

    # ---- Prefect ------------------------------------------------------------------------------

    def retrain_runs(self, created_after: float | None = None) -> list:
        """The retrain deployment's newest flow runs (those created since ``created_after``, if
        given): the ones the alert receiver starts, and any started by hand.

        Newest first by expected start time, filtered on the server: a platform with hundreds of
        earlier runs still shows the ones that matter (a run is scheduled to start when it is
        created, so a run created since ``created_after`` is expected to start since then)."""
        from prefect.client.schemas.filters import (
            FlowRunFilter,
            FlowRunFilterDeploymentId,
            FlowRunFilterExpectedStartTime,
        )
        from prefect.client.schemas.sorting import FlowRunSort

        from monitoring.receiver import RETRAIN_DEPLOYMENT

        since = None
        if created_after is not None:
            # Pydantic converts the datetime; the field is typed as Prefect's own DateTime.
            since = FlowRunFilterExpectedStartTime(
                after_=datetime.fromtimestamp(created_after - 1, tz=UTC)  # pyright: ignore[reportArgumentType]
            )
        with http_calls.prefect_client() as client:
            deployment = client.read_deployment_by_name(RETRAIN_DEPLOYMENT)
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    deployment_id=FlowRunFilterDeploymentId(any_=[deployment.id]),
                    expected_start_time=since,
                ),
                sort=FlowRunSort.EXPECTED_START_TIME_DESC,
                limit=200,
            )
        if created_after is None:
            return runs
        return [r for r in runs if r.created and r.created.timestamp() >= created_after - 1]

    def retrain_loops(self) -> list:
        """Prefect automations, enabled, that start a retrain when a retrain run gets on (starts,
        completes: anything but a failure): each retrain then starts the next, forever.

        Judged from what an automation says it reacts to and what it does: it runs the retrain
        deployment (named, or inferred from the event, which is the retrain run's own), and its
        trigger expects a flow-run event other than a failure, with filters that select the
        events of a retrain run it started itself (by its deployment, its flow, a tag it
        carries, or none at all). Reacting to a retrain that failed (a retry) is not a loop."""

        from monitoring.receiver import RETRAIN_DEPLOYMENT

        with http_calls.prefect_client() as client:
            deployment = client.read_deployment_by_name(RETRAIN_DEPLOYMENT)
            flow = client.read_flow(deployment.flow_id)
            automations = client.read_automations()
        return [
            a
            for a in automations
            if a.enabled
            and any(_runs(action, deployment.id) for action in a.actions)
            and _fires_on_retrain_progress(a.trigger, _retrain_related(deployment, flow, a))
        ]

    def pause_automations(self, automations: list) -> None:

        with http_calls.prefect_client() as client:
            for automation in automations:
                client.pause_automation(automation.id)

    def flows_executing(self) -> list[str] | None:
        """The flow runs the flows service is starting or executing now, by its own account
        (None while it does not answer): a run the API shows ended may still be running."""
        url = self.settings.url(self.settings.flows_port, "/health")
        try:
            return list(http_calls.get(url, timeout=5).json()["executing"])
        except (httpx.HTTPError, ValueError, KeyError):
            return None

    def cancel_queued(self, runs: list, message: str) -> None:
        """Cancel those of ``runs`` that have not started: a Cancelled run never starts."""
        from prefect.states import Cancelled

        with http_calls.prefect_client() as client:
            for run in active_runs(runs):
                if not _started(run):
                    client.set_flow_run_state(run.id, Cancelled(message=message), force=True)

    # ---- waiting ------------------------------------------------------------------------------

    def wait_until(
        self, condition: Callable[[], Any], timeout_s: float, what: str, every_s: float = 1.0
    ) -> Any:
        # An error counts as "not yet": a service may be restarting.
        try:
            return poll(condition, timeout_s, every_s=every_s, what=what)
        except TimedOut as timed_out:
            raise PlatformError(str(timed_out)) from None
