"""The area groups reach xdist: under `make test` (`-n 2 --dist loadgroup`) a test's node id
carries its group, so an area's tests share one worker and its package-scoped platform starts
once. Without that, every area's platform starts on both workers."""

from __future__ import annotations

import pytest


def test_a_test_is_scheduled_with_its_area_group(request: pytest.FixtureRequest) -> None:
    # xdist sets `loadgroup` on its workers' options when the suite runs with --dist loadgroup.
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("runs under `pytest -n N --dist loadgroup`, as `make test` runs the suite")
    assert request.node.nodeid.endswith("@root"), request.node.nodeid
