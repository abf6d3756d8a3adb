"""The ``flows`` service: serves the ``train/train``, ``retrain/retrain`` and
``rollout-decision/rollout-decision`` deployments.

A Prefect runner (what ``flow.serve`` starts) registers the deployments, polls the Prefect
server for runs of them and executes each run in a subprocess: no work pool or worker needed.
Beside it, a tiny ``/health`` endpoint on ``flows_port`` tells the local runtime whether the
runner is really polling; a process that is alive but cut off from Prefect is not healthy.

Run as ``python -m pipelines.runner``. Until Prefect answers, the process waits and says so
instead of crash-looping under supervisord.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psutil

from platform_core import http_calls, web_guard
from platform_core.probe import probe
from platform_core.settings import Settings, get_settings

log = logging.getLogger("mlops_lab.flows")

# How often the runner asks Prefect for new runs: the longest a triggered run waits to start.
POLL_INTERVAL_S = 5.0
# Health fails after this many polls are missed.
MISSED_POLLS = 3
# One run at a time: two fits would share two cores and race for the champion alias.
CONCURRENT_RUNS = 1
RUNNER_NAME = "mlops-lab-flows"


def wait_for_prefect(settings: Settings, log_every_s: float = 10.0) -> None:
    url = f"{settings.prefect_api_url}/health"
    last_said = float("-inf")
    while not (health := probe(url, timeout_s=3.0)).healthy:
        if time.monotonic() - last_said >= log_every_s:
            log.info("waiting for Prefect at %s (%s)", settings.prefect_api_url, health.detail)
            last_said = time.monotonic()
        time.sleep(1.0)


def health(last_polled: datetime | None, now: datetime) -> tuple[int, dict]:
    """HTTP status and body of ``/health`` for a runner that last polled Prefect then."""
    if last_polled is None:
        return 503, {"status": "starting", "detail": "has not polled Prefect yet"}
    age = (now - last_polled).total_seconds()
    if age > MISSED_POLLS * POLL_INTERVAL_S:
        return 503, {"status": "stale", "detail": f"last polled Prefect {age:.0f}s ago"}
    return 200, {"status": "ok", "last_poll_age_s": round(age, 1)}


# A run in one of these states was being executed by a runner: at start-up, none can be this
# process's, and no other process runs these deployments.
IN_FLIGHT = ("PENDING", "RUNNING", "CANCELLING")
ORPHANED = (
    "The flows service stopped while this run was in flight, and the run's process stopped "
    "with it. Nothing is left running; start the run again if it is still needed."
)


def end_orphaned_runs(deployment_ids: list) -> list[str]:
    """Mark Crashed the runs of ``deployment_ids`` an earlier flows process left in flight.

    The service runs each flow run in a subprocess that stops with it (supervisord stops the
    process group; a pod's containers stop together), and nothing else would end such a run's
    state: it would stay Running for ever, and whoever waits for it (a lab reset, a learner)
    would wait until their timeout. Returns the names of the runs ended."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    with http_calls.prefect_client() as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                deployment_id=FlowRunFilterDeploymentId(any_=deployment_ids),
                state=FlowRunFilterState(
                    type=FlowRunFilterStateType(any_=[StateType(t) for t in IN_FLIGHT])
                ),
            )
        )
        for run in runs:
            client.set_flow_run_state(run.id, Crashed(message=ORPHANED), force=True)
    return [run.name for run in runs]


def gate_settings(settings: Settings) -> dict:
    return {
        "min_auc": settings.gate_min_auc,
        "margin_auc": settings.gate_margin_auc,
        "sanity_checks": settings.gate_sanity_checks,
        "max_auc": settings.gate_max_auc,
        "max_feature_auc": settings.gate_max_feature_auc,
    }


def rollout_rules(settings: Settings) -> dict:
    """The rules the rollout-decision runs apply, and how often they run."""
    from pipelines.rollout_decision import Rules

    return Rules.of(settings).to_dict() | {"check_interval_s": settings.rollout_check_interval_s}


def executing() -> list[str]:
    """The flow runs this process is executing now, told by its child processes (the runner
    runs each in one, with the run's id in its environment): the API's state of a run can say it
    ended (a run cancelled by force just as it was picked up) while its process goes on, and may
    still register and promote a model."""
    runs = []
    for child in psutil.Process().children(recursive=False):
        try:
            runs.append(child.environ().get("PREFECT__FLOW_RUN_ID") or f"pid {child.pid}")
        except psutil.NoSuchProcess:
            continue  # ended meanwhile
        except psutil.AccessDenied:
            runs.append(f"pid {child.pid}")
    return sorted(runs)


def start_health_server(settings: Settings, last_polled, in_progress) -> ThreadingHTTPServer:
    """Answer ``GET /health`` on ``flows_port`` from a daemon thread, behind the web guard
    (:mod:`platform_core.web_guard`): another site's page must not read what runs here."""
    hosts = web_guard.AllowedHosts.of(settings, "flows")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            headers = {name.lower(): value for name, value in self.headers.items()}
            if refused := web_guard.refusal(hosts, self.command, headers):
                self.answer(refused.status, refused.body())
                return
            if self.path != "/health":
                self.send_error(404, "only /health is served here")
                return
            status, body = health(last_polled(), datetime.now(UTC))
            # The quality gate this service's runs apply: what an operator checks after a
            # configuration change, without reading files.
            body["gate"] = gate_settings(settings)
            body["rollout_rules"] = rollout_rules(settings)
            # The runs this process executes now, whatever their state in the API says.
            body["executing"] = in_progress()
            self.answer(status, json.dumps(body).encode())

        def answer(self, status: int, payload: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_args) -> None:
            """Probes arrive every few seconds; logging each would bury the runner's own log."""

    server = ThreadingHTTPServer((settings.host, settings.flows_port), Handler)
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    # The Prefect client logs every HTTP request at INFO: one line per poll.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = get_settings()
    wait_for_prefect(settings)

    from prefect.runner import Runner
    from prefect.types.entrypoint import EntrypointType

    from pipelines.flows import retrain, train
    from pipelines.rollout_check import rollout_decision

    runner = Runner(
        name=RUNNER_NAME,
        query_seconds=POLL_INTERVAL_S,
        limit=CONCURRENT_RUNS,
        pause_on_shutdown=False,
    )
    # Module entrypoints: each run's subprocess imports the installed package, whatever its cwd.
    deployment_ids = []
    for flow, description, interval in (
        (train, "Train on a generated scenario or a CSV, register, run the quality gate.", None),
        (retrain, "Retrain on the champion's reference plus recent labelled traffic.", None),
        # On a schedule: a run with no rollout in progress reads one alias and ends.
        (
            rollout_decision,
            "While a rollout is in progress: promote, extend or abort it by the rollout rules.",
            settings.rollout_check_interval_s,
        ),
    ):
        deployment_id = runner.add_deployment(
            # Async-dispatched, so typed as maybe a coroutine; called from sync code it is not.
            flow.to_deployment(  # pyright: ignore[reportArgumentType]
                flow.name,
                description=description,
                interval=interval,
                tags=["mlops-lab"],
                entrypoint_type=EntrypointType.MODULE_PATH,
            )
        )
        deployment_ids.append(deployment_id)
    for name in end_orphaned_runs(deployment_ids):
        log.warning(
            "flow run %s was left in flight by the last flows process: marked Crashed", name
        )
    start_health_server(settings, lambda: runner.last_polled, executing)
    log.info(
        "serving deployments train/train, retrain/retrain and rollout-decision/rollout-decision "
        "(every %gs) for model %s; health on %s",
        settings.rollout_check_interval_s,
        settings.model_name,
        settings.url(settings.flows_port, "/health"),
    )
    asyncio.run(serve(runner))
    try:
        for name in end_orphaned_runs(deployment_ids):
            log.warning("stopped while flow run %s was in flight: marked Crashed", name)
    except Exception as error:  # Prefect stopping too: the next start ends them
        log.warning("stopped; could not end the runs in flight now (%s)", error)
    log.info("stopped")


async def serve(runner) -> None:
    """Run ``runner`` until SIGTERM (how supervisord and Kubernetes stop a service).

    Prefect's own SIGTERM handler, which ``runner.start()`` installs, exits from inside the event
    loop: a traceback in this service's log at every restart, and the run in flight left
    Running. This one cancels the runner instead, so it winds down; ``main`` then ends the runs
    it leaves in flight."""
    loop = asyncio.get_running_loop()
    serving = asyncio.ensure_future(runner.start())
    await asyncio.sleep(0)  # start() installs Prefect's handler before it first awaits
    loop.add_signal_handler(signal.SIGTERM, serving.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await serving


if __name__ == "__main__":
    main()
