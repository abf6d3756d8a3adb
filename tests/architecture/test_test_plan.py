"""`make test` plans its groups over the workers longest first (tests/scheduling.py)."""

from __future__ import annotations

import pytest

from tests.scheduling import GROUP_SECONDS, estimate, plan


def test_every_group_is_planned_once_and_the_long_ones_go_to_different_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUBECONFIG", "/somewhere/admin.kubeconfig")
    groups = {name: 10 for name in GROUP_SECONDS} | {"architecture": 40, "scripts": 3}
    lists = plan(groups, 4)
    assert sorted(g for one in lists for g in one) == sorted(groups)
    # The four longest groups start first, one on each worker.
    longest = sorted(groups, key=lambda g: -estimate(g, groups[g]))[:4]
    assert sorted(one[0] for one in lists) == sorted(longest)
    loads = [sum(estimate(g, groups[g]) for g in one) for one in lists]
    # Within the longest group left over of the ideal share (LPT's bound).
    assert max(loads) - sum(loads) / 4 <= max(GROUP_SECONDS.values()) / 4


def test_without_a_cluster_its_tests_count_as_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    assert estimate("k8s-e2e", 8) == 8
    lists = plan({"labs-early": 100, "labs-late": 100, "k8s-e2e": 8}, 2)
    longer, shorter = sorted(("labs-early", "labs-late"), key=lambda g: -estimate(g, 100))
    assert lists == [[longer], [shorter, "k8s-e2e"]]
