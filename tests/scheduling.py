"""How `make test` hands the xdist groups to its workers: planned by how long each group takes.

xdist's loadgroup hands the groups out in order of their number of tests, whichever worker asks
first: in CI one worker ended 260 s after the others (1173 / 915 / 1051 s). Here the groups are
planned longest first, each on the worker with the least planned time (LPT), from the seconds
each group took in CI; a worker that finishes its plan early takes the next group of the
busiest plan, so a wrong estimate costs balance, never a test."""

from __future__ import annotations

import os
from collections.abc import Mapping

import pytest
from xdist.scheduler import LoadGroupScheduling
from xdist.workermanage import WorkerController

# Seconds each group took in fresh-clone CI runs (setup, call and teardown, from the
# "time by xdist group" summary, rounded up). A group not listed counts a second per test.
GROUP_SECONDS: Mapping[str, float] = {
    # From the fresh-clone run of 96503bf (2 cores, 4 workers beside a cluster, images cached,
    # nothing else running): make test 1827 s, workers 1753-1767 s, 1685 tests; lab 14's
    # cluster test (317 s) new in k8s-e2e. The run of 28fce87 took 1580 s with every lab group
    # 10-30 % shorter: the same suite varies that much from run to run.
    # Lab 17 on the cluster added since (122 s in the fresh-clone run of 8738fa6, whose k8s-e2e
    # took 1457 s; its wrong fixes and the status-after-a-rollout test add about 95 s alone),
    # lab 14's wrong fixes no longer wait out serving's 30 s of stability.
    "k8s-e2e": 1780,
    "labs-middle": 1355,
    "labs-early": 1165,
    "labs-config": 975,
    "labs-late": 620,
    "pipelines": 350,
    "monitoring": 280,
    "serving": 220,
    "runtime": 170,
    "reliability": 155,
    "k8s": 65,
    "interview": 60,
    "core": 45,
    "architecture": 25,
    "infra": 20,
    "bench": 5,
}


def estimate(group: str, tests: int) -> float:
    if group == "k8s-e2e" and not os.environ.get("KUBECONFIG"):
        return float(tests)  # no cluster: each test is skipped with its reason
    return GROUP_SECONDS.get(group, float(tests))


def plan(groups: Mapping[str, int], workers: int) -> list[list[str]]:
    """Groups (name -> number of tests) over ``workers``: longest first, each to the worker with
    the least planned time so far. Each worker's list is in the order it runs."""
    lists: list[list[str]] = [[] for _ in range(workers)]
    loads = [0.0] * workers
    for group in sorted(groups, key=lambda g: -estimate(g, groups[g])):
        least = loads.index(min(loads))
        lists[least].append(group)
        loads[least] += estimate(group, groups[group])
    return lists


class PlannedGroups(LoadGroupScheduling):
    def __init__(self, config: pytest.Config, log=None) -> None:
        super().__init__(config, log)
        self._plans: dict[WorkerController, list[str]] | None = None

    def _assign_work_unit(self, node: WorkerController) -> None:
        if self._plans is None:
            sizes = {scope: len(unit) for scope, unit in self.workqueue.items()}
            self._plans = dict(zip(self.nodes, plan(sizes, len(self.nodes)), strict=True))
        own = self._plans.setdefault(node, [])
        if not own:
            # Done with its plan: the last group of the plan with the most time left.
            busiest = max(
                self._plans.values(),
                key=lambda groups: sum(estimate(g, len(self.workqueue[g])) for g in groups),
            )
            if busiest:
                own.append(busiest.pop())
        scope = own.pop(0) if own else next(iter(self.workqueue))
        unit = self.workqueue.pop(scope)
        self.assigned_work.setdefault(node, {})[scope] = unit
        collection = self.registered_collections[node]
        node.send_runtest_some(
            [collection.index(nodeid) for nodeid, done in unit.items() if not done]
        )
