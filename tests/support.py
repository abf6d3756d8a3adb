"""Helpers for tests that run the real platform: settings on free ports, the CLI as a process."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from sklearn.pipeline import Pipeline

from mlops_lab.runtime.base import tail
from mlops_lab.runtime.local.runtime import LocalRuntime
from mlops_lab.runtime.ports import SPARE_PORTS, spare_ports
from mlops_lab.runtime.services import SERVICES
from pipelines import data
from platform_core import contract, mlflow_client
from platform_core.locks import platform_lock_path
from platform_core.prediction_log import predictions, rows_for
from platform_core.settings import Settings
from platform_core.waiting import TimedOut, poll
from serving.schema import records_from_frame
from tests import cli_forks
from tests.models import TYPES

PORT_SETTINGS = tuple(name for name in Settings.model_fields if name.endswith("_port"))
CLI = cli_forks.CLI


@functools.cache
def uv_command() -> tuple[str, ...]:
    """The uv the project's scripts run, found as scripts/bootstrap.sh finds it: one on PATH, a
    `python3 -m uv`, or the one bootstrap fetched into .tools/ on a machine with neither (a fresh
    Debian has no pip, so no `python3 -m uv`)."""
    from platform_core.settings import REPO_ROOT

    def works(*command: str) -> bool:
        probe = subprocess.run([*command, "--version"], capture_output=True, check=False)
        return probe.returncode == 0

    on_path = shutil.which("uv")
    if on_path and works(on_path):
        return (on_path,)
    if works("python3", "-m", "uv"):
        return ("python3", "-m", "uv")
    bootstrap = (REPO_ROOT / "scripts" / "bootstrap.sh").read_text()
    version = re.search(r'^UV_VERSION="(.+)"$', bootstrap, re.MULTILINE)
    local = REPO_ROOT / ".tools" / f"uv-{version.group(1) if version else ''}" / "uv"
    if local.is_file() and works(str(local)):
        return (str(local),)
    pytest.fail(
        "No uv on this machine: `make venv` (scripts/bootstrap.sh) fetches one into .tools/."
    )


def free_ports(count: int) -> list[int]:
    """Distinct ports free now, outside the ephemeral range (see `ports.SPARE_PORTS`), from a
    slice of their own for each xdist worker: two workers starting platforms never pick alike."""
    return spare_ports(count, within=worker_ports())


# Four slices for workers gw0..gw3 (a fifth worker shares gw0's), the last for a run without xdist.
_SLICES = 5


def worker_ports(worker: str | None = None) -> range:
    worker = worker if worker is not None else os.environ.get("PYTEST_XDIST_WORKER")
    index = int(worker.removeprefix("gw")) % (_SLICES - 1) if worker else _SLICES - 1
    size = len(SPARE_PORTS) // _SLICES
    start = SPARE_PORTS.start + index * size
    return range(start, start + size)


def remove_platform_files(settings: Settings) -> None:
    """Delete a test platform's data dir, its learner dir and the platform lock file beside them
    (the lock lives outside the data dir on purpose: removing the dir alone leaves it in /tmp)."""
    shutil.rmtree(settings.home, ignore_errors=True)
    shutil.rmtree(settings.learner_home, ignore_errors=True)
    platform_lock_path(settings).unlink(missing_ok=True)


def temp_home() -> Path:
    return Path(tempfile.mkdtemp(prefix="mlab-", dir="/tmp"))


def make_settings(**overrides: Any) -> Settings:
    """Settings for one test platform: a short temp data dir, every port free, fast intervals."""
    # Short path: supervisord's unix socket lives in it. A home given is used as it is: a temp
    # dir made anyway would be left behind, empty, by every such call.
    home = Path(overrides["home"]) if "home" in overrides else temp_home()
    values: dict[str, Any] = dict(zip(PORT_SETTINGS, free_ports(len(PORT_SETTINGS)), strict=True))
    values.update(
        home=home,
        # The learner's folder lives beside the data dir, never inside it (clean keeps it).
        learner_home=home.with_name(f"{home.name}-learner"),
        scrape_interval_s=1.0,
        rule_evaluation_interval_s=1.0,
        startup_timeout_s=300.0,
    )
    values.update(overrides)
    return settings_without_dotenv(**values)


def settings_without_dotenv(**values: Any) -> Settings:
    """Settings from ``values`` and the environment, never from the repository's ``.env``."""
    # `_env_file` is pydantic-settings' init keyword, absent from the signature pyright sees.
    return Settings(_env_file=None, **values)  # pyright: ignore[reportCallIssue]


def env_for(settings: Settings) -> dict[str, str]:
    return {**os.environ, **settings.to_env(), **cli_forks.CONSTANT_ENV}


def run_cli(
    settings: Settings, *args: str, timeout: float = 600, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `mlops-lab ARGS` as a user would, against the platform described by ``settings``:
    forked from a process that has imported the CLI already (:mod:`tests.cli_forks`)."""
    return cli_forks.run(args, env_for(settings), stdin if stdin is not None else "", timeout)


def wait_for(
    condition: Callable[[], Any],
    timeout_s: float,
    interval_s: float = 0.5,
    what: str = "condition",
    log: Path | None = None,
) -> Any:
    """Poll until ``condition()`` is truthy and return its value; fail with ``what`` otherwise,
    quoting the end of ``log`` (the service being waited for) so a CI failure explains itself."""
    try:
        return poll(condition, timeout_s, every_s=interval_s, what=what)
    except TimedOut as timed_out:
        message = str(timed_out)
        if log is not None:
            message += f"\nlast lines of {log}:\n" + "\n".join(tail(log, 30))
        raise AssertionError(message) from None


@contextmanager
def running_platform(names: Iterable[str] | None = None, **overrides: Any) -> Iterator[Settings]:
    """Start the named services (all when ``None``) on free ports in a temp dir; stop and delete
    everything afterwards. Yields the settings that describe this platform."""
    wanted = None if names is None else set(names)
    services = [s for s in SERVICES if wanted is None or s.name in wanted]
    if wanted is not None and len(services) != len(wanted):
        unknown = wanted - {s.name for s in services}
        raise ValueError(f"unknown services: {sorted(unknown)}")
    settings = make_settings(**overrides)
    runtime = LocalRuntime(settings, services=services)
    try:
        runtime.up()
        yield settings
    finally:
        runtime.down()
        remove_platform_files(settings)


def scrape(url: str) -> dict[str, float]:
    """Every sample on a /metrics page: ``'name{labels}'`` -> value, labels as exposed."""
    samples = {}
    for family in text_string_to_metric_families(httpx.get(url, timeout=10).text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sample.labels.items())
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def _escape(value: str) -> str:
    # The exposition format's escapes, undone by the parser: keys match the page's text.
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def log_predictions(
    engine: sa.Engine,
    model_name: str,
    frame: pd.DataFrame,
    version: str,
    model: Pipeline | None = None,
    with_labels: bool = False,
) -> None:
    """Append one logged prediction per row, as serving would (optionally with feedback labels).

    Straight into the table: it is the contract between serving, the drift monitor and
    retraining, so those can be tested without serving running."""
    if model is not None:
        probability = model.predict_proba(contract.prepare_features(frame, TYPES))[:, 1]
    else:
        probability = [0.5] * len(frame)
    records = records_from_frame(frame, data.FEATURE_NAMES)
    predicted = [int(p >= 0.5) for p in probability]
    rows = rows_for(uuid.uuid4().hex, model_name, version, records, predicted, list(probability))
    if with_labels:
        for row, label in zip(rows, frame[data.TARGET], strict=True):
            row.update(label=int(label), labelled_at=row["created_at"])
    with engine.begin() as conn:
        conn.execute(sa.insert(predictions), rows)


@contextmanager
def prefect_api(settings: Settings) -> Iterator[None]:
    """Prefect clients in this process (flows, `run_deployment`) talk to the platform's server,
    never to a temporary one of their own. Prefect reads the environment once, when first
    imported (maybe by an earlier test in this worker), so the API URL is set in a settings
    context."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_SERVER_ALLOW_EPHEMERAL_MODE,
        temporary_settings,
    )

    with temporary_settings(
        updates={
            PREFECT_API_URL: settings.prefect_api_url,
            PREFECT_SERVER_ALLOW_EPHEMERAL_MODE: False,
        }
    ):
        yield


def unset_until_undone(patch: pytest.MonkeyPatch, key: str) -> None:
    """Unset ``key`` until ``patch`` is undone, even if the code under test sets it meanwhile
    (``mlflow_client.apply`` does). ``delenv`` alone records nothing for a key that is not set,
    so a value set later would outlive the test."""
    patch.setenv(key, "")
    patch.delenv(key)


@contextmanager
def platform_environment(settings: Settings) -> Iterator[None]:
    """What the CLI does for every command: MLflow and Prefect clients in this process talk to
    the platform ``settings`` describe (:func:`prefect_api`). Undone afterwards, MLflow's
    patience and its switched-off loaders included."""
    with pytest.MonkeyPatch.context() as patch, prefect_api(settings):
        for key in mlflow_client.ENV_KEYS:
            unset_until_undone(patch, key)
        for key, value in settings.to_env().items():
            patch.setenv(key, value)
        yield
