"""Serving, one record per request: ours beside the same model in process and `mlflow models serve`.

Starts MLflow and our serving on free ports in a temp dir (as `make up` would), registers a model
trained on the default generated data, makes it champion, and starts ``mlflow models serve`` of
that same registered version (``--env-manager local``, 127.0.0.1, a free port). Then:

- in process: the whole per-request path our service runs on one record (validate, build the
  frame, prepare, predict), beside ``predict_proba`` on a prepared row (the model alone);
- over HTTP, from a separate load process (benchmarks/load.py): p50/p99 at fixed open-loop rates
  (queueing shows), and the maximum throughput (closed loop), for both servers.

    .venv/bin/python -m benchmarks.bench_serving [--quick]
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import numpy as np
import pandas as pd

from benchmarks import results
from benchmarks.records import complete_records
from benchmarks.results import Figure, Report
from mlops_lab.runtime.executables import venv_bin
from platform_core import contract
from platform_core.contract import prepare_features
from platform_core.waiting import poll
from serving import model as model_loading
from tests.models import TYPES, register_model, set_champion
from tests.serving.conftest import wait_until_serving
from tests.support import env_for, free_ports, running_platform

SECTION = "serving"
RATES = (50, 100, 200)
CONCURRENCY = (16, 64)


def _timed(call: Callable[[], object], seconds: float) -> np.ndarray:
    """Latencies (ms) of back-to-back calls for about ``seconds``, after a warm-up."""
    for _ in range(20):
        call()
    latencies = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        call()
        latencies.append((time.perf_counter() - started) * 1000)
    return np.array(latencies)


def in_process(loaded: model_loading.LoadedModel, seconds: float) -> dict[str, float]:
    """p50 ms on one record: our per-request path, the same through scikit-learn (no fast path),
    and scikit-learn's predict_proba alone on a prepared row."""
    one = complete_records(1)
    frame = prepare_features(pd.DataFrame.from_records(one, columns=TYPES.names), TYPES)
    slow = dataclasses.replace(loaded, fast=None)
    calls = {
        "path": lambda: loaded.score([loaded.schema.validate(one)]),
        "sklearn path": lambda: slow.score([slow.schema.validate(one)]),
        "predict_proba": lambda: loaded.estimator.predict_proba(frame),
    }
    return {name: float(np.median(_timed(call, seconds / 2))) for name, call in calls.items()}


def load(url: str, target: str, seconds: float, **shape: float) -> dict:
    """One bounded load run from a separate process; its JSON summary."""
    ((flag, value),) = shape.items()
    command = [sys.executable, "-m", "benchmarks.load", "--url", url, "--target", target]
    command += ["--seconds", str(seconds), f"--{flag}", str(value)]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


class MlflowModelsServe:
    """``mlflow models serve`` of one registered version, the tool a learner would otherwise use."""

    def __init__(self, settings, version: str) -> None:
        self.port = free_ports(1)[0]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = settings.home / "mlflow-models-serve.log"
        uri = f"models:/{settings.model_name}/{version}"
        command = [str(venv_bin("mlflow")), "models", "serve", "-m", uri, "--env-manager"]
        command += ["local", "--host", "127.0.0.1", "--port", str(self.port)]
        # It execs `uvicorn` by name: the venv's bin must come first on PATH.
        env = env_for(settings)
        env["PATH"] = f"{venv_bin('mlflow').parent}{os.pathsep}{env.get('PATH', '')}"
        with self.log.open("w") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)

    def wait(self) -> None:
        def answers() -> bool:
            if self.process.poll() is not None:
                tail = "\n".join(self.log.read_text().splitlines()[-15:])
                raise RuntimeError(f"mlflow models serve exited:\n{tail}")
            return httpx.get(f"{self.url}/ping", timeout=2).status_code == 200

        what = f"mlflow models serve to answer /ping (its log: {self.log})"
        poll(answers, 180, what=what, tolerate=(httpx.HTTPError,))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def measure(report: Report, quick: bool = False) -> None:
    seconds = 3.0 if quick else 10.0
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    with running_platform(["mlflow", "serving"], alias_poll_interval_s=1.0) as settings:
        version = register_model(settings, seed=42, rows=settings.default_rows, label="bench")
        set_champion(settings, version.version)
        peer = MlflowModelsServe(settings, version.version)
        try:
            wait_until_serving(settings, version.version, timeout_s=120)
            client = contract.client_for(settings)
            registered = client.get_model_version(settings.model_name, version.version)
            loaded = model_loading.load(client, settings, registered)
            limits = in_process(loaded, seconds)
            peer.wait()
            ours = settings.url(settings.serving_port)
            _over_http(report, ours, peer.url, limits["path"], seconds)
        finally:
            peer.stop()
    fast = "numpy fast path" if loaded.fast is not None else "no fast path: scikit-learn"
    report.add(
        Figure(
            SECTION,
            "in process, one record: validate + score (p50)",
            limits["path"],
            "ms",
            "the same through scikit-learn",
            limits["sklearn path"],
            "< 2 ms",
            fast,
        ),
        Figure(
            SECTION,
            "in process, one record: validate + score (p50)",
            limits["path"],
            "ms",
            "scikit-learn predict_proba, prepared row",
            limits["predict_proba"],
        ),
    )


def _over_http(report: Report, ours: str, peer: str, path_ms: float, seconds: float) -> None:
    targets = {"ours": ours, "mlflow": peer}
    for target, url in targets.items():
        # Warm-up at the first measured rate: connections, lazy imports, caches, batch sizing.
        load(url, target, 5.0, rate=RATES[0])
    series: dict[str, list[list[float]]] = {"ours": [], "mlflow models serve": []}
    for rate in RATES:
        runs = {target: load(url, target, seconds, rate=rate) for target, url in targets.items()}
        for target, label in (("ours", "ours"), ("mlflow", "mlflow models serve")):
            run = runs[target]
            series[label].append([rate, run["p50_ms"] or 0.0, run["p99_ms"] or 0.0, run["failed"]])
        note = _failures(runs)
        report.add(
            Figure(
                SECTION,
                f"p50 at {rate} req/s",
                runs["ours"]["p50_ms"],
                "ms",
                "mlflow models serve",
                runs["mlflow"]["p50_ms"],
                note=note,
            ),
            Figure(
                SECTION,
                f"p99 at {rate} req/s",
                runs["ours"]["p99_ms"],
                "ms",
                "mlflow models serve",
                runs["mlflow"]["p99_ms"],
                goal="< 25 ms" if rate == 200 else None,
            ),
        )
    report.series.update(series)
    best = {
        target: max(
            (load(url, target, seconds, concurrency=c) for c in CONCURRENCY),
            key=lambda run: run["throughput"],
        )
        for target, url in targets.items()
    }
    report.add(
        Figure(
            SECTION,
            "max throughput (closed loop)",
            best["ours"]["throughput"],
            "req/s",
            "mlflow models serve",
            best["mlflow"]["throughput"],
            goal=">= 5x",
            note=_failures(best),
        ),
        Figure(
            SECTION,
            "max throughput (closed loop)",
            best["ours"]["throughput"],
            "req/s",
            "in-process limit (1 / p50 of the per-request path)",
            1000 / path_ms,
        ),
    )


def _failures(runs: dict[str, dict]) -> str | None:
    failed = {t: r["failed"] for t, r in runs.items() if r["failed"]}
    if not failed:
        return None
    first = next(runs[t]["first_error"] for t in failed)
    return "failed: " + ", ".join(f"{t} {n}" for t, n in failed.items()) + f"; {first[:80]}"


if __name__ == "__main__":
    results.main(measure)
