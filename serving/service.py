"""The model-serving API: BentoML serves the MLflow champion, and a rollout's candidate beside it.

``POST /predict`` scores loan applications with whichever version holds the champion alias (or,
during a canary rollout, for a share of the requests, the candidate),
``POST /feedback`` attaches true labels to earlier predictions, ``/readyz`` is ready once the
champion is loaded (or once the registry says no version is champion: nothing to load), ``/livez``
as soon as the process answers, and ``/metrics`` adds the serving metrics to
BentoML's own. Run it with ``bentoml serve serving.service:Serving`` (``mlops-lab up`` does).

How the parts fit: :mod:`serving.registry` follows the alias and hot-swaps the model,
:mod:`serving.schema` checks each record against the served version, :mod:`serving.batching`
scores concurrent requests together, :mod:`serving.log_writer` records every answer off the
request path, and :mod:`serving.rejections` counts bad input. During a rollout,
:mod:`serving.rollout` decides which version answers a request and :mod:`serving.shadow` has a
shadow candidate score it after the answer. Under overload the batcher sheds
requests with a 503 and ``Retry-After`` rather than queueing without limit.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import TYPE_CHECKING

import anyio.to_thread
import bentoml
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from platform_core import mlflow_client, prediction_log
from platform_core.prediction_log import ROLE_CANARY, ROLE_CHAMPION, ROLE_SHADOW, rows_for
from platform_core.settings import get_settings
from platform_core.web_guard import AllowedHosts, WebGuard
from serving import lifeline, rejections
from serving.batching import MicroBatcher, Overloaded
from serving.callers import CallerCounter, Callers
from serving.log_writer import PredictionLogWriter
from serving.metrics import ServingMetrics, render_state
from serving.schema import (
    ApplicantKey,
    FeedbackResponse,
    Labels,
    PredictResponse,
    Records,
    UnknownRecord,
)
from serving.shadow import ShadowJob, ShadowResult, ShadowScorer

if TYPE_CHECKING:
    from serving.model import LoadedModel
    from serving.rollout import LiveRollout

log = logging.getLogger(__name__)
# BentoML's logging config leaves the root logger at WARNING; our modules report at INFO.
logging.getLogger("serving").setLevel(logging.INFO)

# Probes and scrapes would drown the access log.
_QUIET_PATHS = ["/livez", "/healthz", "/readyz", "/metrics"]
_FEEDBACK_FLUSH_TIMEOUT_S = 10.0
_FEEDBACK_SHADOW_TIMEOUT_S = 2.0
# Must finish within supervisord's stopwaitsecs (20 s), after which the process is killed.
_SHUTDOWN_FLUSH_TIMEOUT_S = 15.0
# Shadow scores still queued at shutdown get this long (taken from the flush's share) before they
# are dropped: they answer nobody.
_SHUTDOWN_SHADOW_TIMEOUT_S = 2.0
# A batch takes tens of milliseconds; a second lets the queue drain without a client hammering it.
_RETRY_AFTER_S = 1


@bentoml.service(
    name="serving",
    # One process holds one model copy; on a small machine batching, not processes, buys
    # throughput, and a single process keeps the state metrics exact.
    workers=1,
    traffic={"timeout": 30},
    logging={"access": {"enabled": True, "skip_paths": _QUIET_PATHS}},
)
class Serving:
    def __init__(self) -> None:
        # MLflow's client retries an unreachable server for minutes by default; here the poll
        # loop is the retry, and an outage must show within one poll.
        mlflow_client.apply(mlflow_client.SERVING)
        # Imported here, in the worker: `bentoml serve` also imports this module in its
        # supervising process just to read the service config, which needs neither MLflow nor
        # scikit-learn (seconds of import time and a few hundred MB).
        from serving.registry import ChampionWatcher

        self.settings = get_settings()
        self.model_name = self.settings.model_name
        self.metrics = ServingMetrics.for_this_process(slo_s=self.settings.alert_latency_p99_s)
        rejections.quiet_bentoml_validation_tracebacks()
        self.watcher = ChampionWatcher(
            self.settings,
            on_swap=self._champion_loaded,
            on_rollout_aborted=self.metrics.rollout_aborts.inc,
            on_candidate=self._candidate_loaded,
        )
        self.shadow = ShadowScorer(
            self.settings.shadow_queue_records,
            on_scored=self._log_shadow,
            on_dropped=self.metrics.shadow_dropped.inc,
            on_failed=lambda reason, n: self.metrics.shadow_failed.labels(reason=reason).inc(n),
            on_scoring=self.metrics.observe_scoring,
            on_requests=lambda version, ok, n: self.metrics.count_request(
                version, ROLE_SHADOW, ok, n
            ),
        )
        self.batcher = MicroBatcher(
            self.settings.max_batch_records,
            self.settings.max_waiting_records,
            max_wait_s=self.settings.serving_batch_wait_s,
            on_scored=self.metrics.observe_scoring,
        )
        self.log_writer = PredictionLogWriter(
            self.settings.prediction_log_db_url,
            capacity=self.settings.prediction_log_queue_size,
            flush_interval_s=self.settings.prediction_log_flush_interval_s,
            on_written=self.metrics.log_written.inc,
            on_dropped=self.metrics.log_dropped.inc,
            dead_letter=self.settings.paths.prediction_log_dead_letter,
            on_dead_lettered=self.metrics.log_dead_lettered.inc,
        )

    @bentoml.on_startup
    async def _start(self) -> None:
        self.batcher.start()
        self.log_writer.start()
        self.shadow.start()
        self.watcher.start()
        lifeline.exit_with_parent()
        log.info(
            "Serving %s from the registry at %s (polled every %ss); prediction log at %s.",
            self.watcher.alias,
            self.settings.mlflow_url,
            self.settings.alias_poll_interval_s,
            self.log_writer.safe_url,
        )
        if self.batcher.max_wait_s:
            log.warning(
                "Each batch waits up to %ss for more requests before it is scored "
                "(serving_batch_wait_s): every request's latency includes that wait.",
                self.batcher.max_wait_s,
            )

    @bentoml.on_shutdown
    async def _stop(self) -> None:
        # Uvicorn has finished the requests in flight by now; what is left is queued log rows.
        self.watcher.stop()
        await self.batcher.stop()
        await anyio.to_thread.run_sync(self.shadow.close, _SHUTDOWN_SHADOW_TIMEOUT_S)
        queued = self.log_writer.depth
        lost = await anyio.to_thread.run_sync(
            self.log_writer.close, _SHUTDOWN_FLUSH_TIMEOUT_S - _SHUTDOWN_SHADOW_TIMEOUT_S
        )
        log.info("Prediction log flushed on shutdown: %d rows written.", queued - lost)

    # ---- state read by probes and /metrics ------------------------------------------------

    @property
    def served(self) -> LoadedModel | None:
        return self.watcher.current

    @property
    def rollout(self) -> LiveRollout | None:
        return self.watcher.rollout

    @property
    def shadow_queue_depth(self) -> int:
        return self.shadow.depth

    @property
    def registry_reachable(self) -> bool | None:
        return self.watcher.registry_reachable

    @property
    def refused_version(self) -> str | None:
        return self.watcher.refused

    @property
    def transforms_invalid_version(self) -> str | None:
        return self.watcher.transforms_invalid

    @property
    def load_failed_version(self) -> str | None:
        return self.watcher.failed

    @property
    def log_queue_depth(self) -> int:
        return self.log_writer.depth

    def __is_ready__(self) -> bool:
        # Ready once the champion is loaded: a rolling update keeps the old pod until then. With
        # no champion at all there is nothing to wait for (/predict still says why it cannot).
        if self.watcher.current is None and not self.watcher.nothing_to_serve:
            # BentoML answers 503 for us; raising lets the body say why.
            raise HTTPException(503, f"Not ready: {self.watcher.waiting_for}")
        return True

    def __metrics__(self, content: str) -> str:
        return content + render_state(self)

    # ---- API ------------------------------------------------------------------------------

    # bentoml types output_spec as its IODescriptor, but takes any pydantic model and wraps it.
    @bentoml.api(output_spec=PredictResponse)  # pyright: ignore[reportArgumentType]
    async def predict(
        self, records: Records, applicant_key: ApplicantKey = None
    ) -> PredictResponse | JSONResponse:
        """Score loan applications with the current champion (or, during a canary rollout, for
        its share of requests, the candidate: the answer names the version). A record may leave a
        feature null (unknown) but must not omit it."""
        received = time.perf_counter()
        champion = self.watcher.current
        live = self.watcher.rollout
        if champion is None:
            return JSONResponse({"error": f"Not ready: {self.watcher.waiting_for}"}, 503)
        if live is not None and live.version == champion.version:
            live = None  # promoted this very moment: the champion is the candidate
        canary = live is not None and live.answers(applicant_key)
        model = live.candidate if live is not None and canary else champion
        clean = model.schema.validate(records)
        role = ROLE_CANARY if canary else ROLE_CHAMPION
        try:
            # The log keeps `clean`, as received; the model sees it after the transforms its
            # version declares (none, for the platform's own models: see serving/transforms.py).
            scores = await self.batcher.score(model, clean)
        except Overloaded as overload:
            self.metrics.shed.inc()
            return JSONResponse(
                {
                    "error": f"The service is overloaded ({overload}); this request was not "
                    f"scored. Retry after {_RETRY_AFTER_S} s, or send fewer requests at once."
                },
                503,
                headers={"Retry-After": str(_RETRY_AFTER_S)},
            )
        except Exception:
            # Answered as a 500 by BentoML; counted against the version that failed (a shed
            # request, above, is the server's load, not the version's fault).
            self.metrics.count_request(model.version, role, ok=False)
            raise
        self.metrics.count_request(model.version, role, ok=True)
        request_id = uuid.uuid4().hex
        self.log_writer.submit(
            rows_for(
                request_id,
                model.name,
                model.version,
                clean,
                scores.predictions,
                scores.probabilities,
                role=role,
            )
        )
        if live is not None and live.shadow:
            self.shadow.submit(
                ShadowJob(request_id, records, live.candidate, scores, model.version)
            )
        self.metrics.observe(scores.predictions, scores.probabilities)
        for feature, count in model.schema.out_of_range(clean).items():
            self.metrics.out_of_range.labels(feature=feature).inc(count)
        self.metrics.latency.labels(model_version=model.version).observe(
            time.perf_counter() - received
        )
        return PredictResponse(
            predictions=scores.predictions,
            probabilities=scores.probabilities,
            model_version=model.version,
            request_id=request_id,
        )

    def _champion_loaded(self, model: LoadedModel) -> None:
        self.metrics.swaps.inc()
        self.metrics.start_at_zero(model.version, ROLE_CHAMPION)

    def _candidate_loaded(self, model: LoadedModel) -> None:
        # Called once the rollout is published, so its plan says the candidate's role.
        live = self.watcher.rollout
        shadow = live is not None and live.shadow
        self.metrics.start_at_zero(model.version, ROLE_SHADOW if shadow else ROLE_CANARY)

    def _log_shadow(self, result: ShadowResult) -> None:
        """A shadow candidate's scores (on the shadow thread): logged as shadow rows, which no
        reader takes for answers."""
        job = result.job
        self.log_writer.submit(
            rows_for(
                job.request_id,
                job.candidate.name,
                job.candidate.version,
                result.records,
                result.scores.predictions,
                result.scores.probabilities,
                role=ROLE_SHADOW,
            )
        )
        self.metrics.shadow_scored.inc(len(result.records))

    # A pydantic model, as for predict.
    @bentoml.api(output_spec=FeedbackResponse)  # pyright: ignore[reportArgumentType]
    async def feedback(self, labels: Labels) -> FeedbackResponse | JSONResponse:
        """Attach what really happened to earlier predictions (by request id and record index),
        so model performance can be measured once outcomes are known."""
        # Predictions answered a moment ago may still be queued: write them first, their shadow
        # scores too if they come soon (a shadow row without its label is no answer lost).
        await anyio.to_thread.run_sync(self.shadow.flush, _FEEDBACK_SHADOW_TIMEOUT_S)
        flushed = await anyio.to_thread.run_sync(self.log_writer.flush, _FEEDBACK_FLUSH_TIMEOUT_S)
        unavailable = JSONResponse(
            {
                "error": f"The prediction log at {self.log_writer.safe_url} cannot be written "
                "right now; no label was stored. Retry later."
            },
            503,
        )
        if not flushed:
            return unavailable
        wanted = [(item.request_id, item.record_index, item.label) for item in labels]
        try:
            # Not tied to a write: after a restart, labels arrive for rows the old process wrote.
            engine = await anyio.to_thread.run_sync(self.log_writer.connection)
            unknown = await anyio.to_thread.run_sync(prediction_log.record_labels, engine, wanted)
        except SQLAlchemyError:
            log.exception("Could not store %d feedback labels.", len(wanted))
            return unavailable
        distinct = {(request_id, index) for request_id, index, _ in wanted}
        return FeedbackResponse(
            received=len(wanted),
            stored=len(distinct) - len(unknown),
            unknown=[UnknownRecord(request_id=rid, record_index=idx) for rid, idx in unknown],
        )


def _service_metrics() -> ServingMetrics:
    return bentoml.get_current_service().metrics


# Refuses what a web page could make a browser send (platform_core.web_guard): a foreign Host,
# a cross-site Origin, a POST that is not JSON. Added first, so it runs outside the counter below:
# a refused request is not bad input. bentoml's protocol types the middleware's instances as what
# its class is, a factory of (app, **options): Starlette's shape.
Serving.add_asgi_middleware(WebGuard, hosts=AllowedHosts.of(get_settings(), "serving"))  # pyright: ignore[reportArgumentType]
# Counts and logs every 400 on its way out (see serving.rejections).
Serving.add_asgi_middleware(rejections.RejectionCounter, metrics=_service_metrics)  # pyright: ignore[reportArgumentType]
# Counts API requests by calling application, bounded to the callers it knows (serving.callers).
Serving.add_asgi_middleware(
    CallerCounter,  # pyright: ignore[reportArgumentType]
    metrics=_service_metrics,
    callers=Callers.parse(get_settings().serving_callers),
)
