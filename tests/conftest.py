"""Fixtures shared by every test area. Area conftests start the services they need with
:func:`tests.support.running_platform`, in a fixture named ``platform``: every test that
requests it (directly or through another fixture) is marked ``platform``, and `make test-fast`
runs the others (``-m "not platform"``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from platform_core.settings import Settings
from tests.scheduling import PlannedGroups
from tests.support import make_settings, remove_platform_files


# Each area starts its own platform, so areas run in parallel (`pytest -n 2 --dist loadgroup`;
# `make test` runs 2 workers, 4 when KUBECONFIG names a cluster): the suite waits on services
# about a fifth of the time even then. Tests of one area stay on one worker, where its
# package-scoped platform starts once. The lab tests are split in three groups, each with a
# platform of its own, because together they are the longest area by far.
def _group(item: pytest.Item) -> str:
    parts = item.path.relative_to(item.config.rootpath / "tests").parts
    area = parts[0] if len(parts) > 1 else "root"
    if area == "labs":
        lab_id = getattr(getattr(item, "callspec", None), "params", {}).get("lab_id")
        return LAB_GROUPS.get(lab_id, "labs-early") if isinstance(lab_id, str) else "labs-early"
    return area


# Each lab's cycles (its variants' too) by group, a platform each, balanced by their times in CI.
# labs-config holds the labs whose fault is one service's configuration or a rule file (05, 06,
# 11, 21, 22) or the registry's store (24): cheap cycles, three variants each. The engine,
# on-call (expert rounds too) and postmortem tests run early; the exam's test (about 200 s) is
# marked late.
LAB_GROUPS = {
    **dict.fromkeys(("04", "07", "08", "09", "18", "23"), "labs-middle"),
    **dict.fromkeys(("10", "13", "19", "20"), "labs-late"),
    **dict.fromkeys(("05", "06", "11", "21", "22", "24"), "labs-config"),
}


# The one name of a running-platform fixture. A test that requests it, even through another
# fixture, is marked `platform`, so it cannot land in `make test-fast` by accident;
# tests/architecture/test_fast_lane.py checks that no unmarked test starts services otherwise.
PLATFORM_FIXTURE = "platform"


# First, before xdist's own hook reads the markers into the node ids it schedules by (it is
# registered after this conftest, so it would otherwise run first and never see them), and
# before `-m` deselects by the `platform` marker.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(_group(item)))
        if PLATFORM_FIXTURE in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.platform)


# `--dist loadgroup` hands the groups out by plan (tests/scheduling.py), longest first.
def pytest_xdist_make_scheduler(config: pytest.Config, log) -> PlannedGroups | None:
    return PlannedGroups(config, log) if config.getvalue("dist") == "loadgroup" else None


# CI (.ci/run) keeps a record of how long each phase took, outside the checkout. The end-to-end
# test on its cluster runs inside `make test`, so its deploy (the fixture's setup) and its tests
# are written there as two phases of their own.
E2E_MODULE = "tests/k8s/test_cluster_e2e.py"
_e2e_seconds = {"setup": 0.0, "tests": 0.0}
_e2e_outcomes: set[str] = set()


# Under `make test`, the time each group took and on which worker: the suite's wall time is
# about the busier worker's sum, so this is what to look at to keep it short.
_group_seconds: dict[str, float] = {}
_group_worker: dict[str, str] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    group = report.nodeid.rpartition("@")[2] if "@" in report.nodeid else None
    if group is not None:
        _group_seconds[group] = _group_seconds.get(group, 0.0) + report.duration
        worker = getattr(getattr(report, "node", None), "gateway", None)
        _group_worker[group] = getattr(worker, "id", "?")
    if report.nodeid.startswith(E2E_MODULE):
        _e2e_seconds["setup" if report.when == "setup" else "tests"] += report.duration
        if report.when == "call" or report.outcome != "passed":
            _e2e_outcomes.add(report.outcome)


def pytest_sessionfinish(session: pytest.Session) -> None:
    timings = os.environ.get("MLOPS_LAB_CI_TIMINGS")
    if not timings or hasattr(session.config, "workerinput") or not _e2e_outcomes:
        return
    outcome = next(o for o in ("failed", "skipped", "passed") if o in _e2e_outcomes)
    with Path(timings).open("a") as record:
        record.write(f"{'kubernetes deploy (e2e)':<28} {_e2e_seconds['setup']:4.0f}s\n")
        record.write(f"{f'kubernetes e2e ({outcome})':<28} {_e2e_seconds['tests']:4.0f}s\n")


def pytest_terminal_summary(terminalreporter) -> None:
    if not _group_seconds:
        return
    terminalreporter.section("time by xdist group (setup, call and teardown)")
    by_worker: dict[str, float] = {}
    for group, seconds in sorted(_group_seconds.items(), key=lambda item: -item[1]):
        worker = _group_worker[group]
        by_worker[worker] = by_worker.get(worker, 0.0) + seconds
        terminalreporter.write_line(f"{seconds:7.1f}s  {group:<14} on {worker}")
    for worker, seconds in sorted(by_worker.items()):
        terminalreporter.write_line(f"{seconds:7.1f}s  worker {worker} in all")


@pytest.fixture
def unstarted_settings() -> Iterator[Settings]:
    """Settings for a platform that is not started: free ports with nothing behind them, a temp
    data dir (and learner dir, and the platform's lock file beside them) removed after."""
    settings = make_settings()
    yield settings
    remove_platform_files(settings)
