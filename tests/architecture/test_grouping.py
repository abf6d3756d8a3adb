"""The area groups reach xdist: under `make test` (`--dist loadgroup`, 2 workers or 3 with a
cluster) a test's node id carries its group, so an area's tests share one worker and its
package-scoped platform starts once. Without that, every area's platform starts on every worker."""

from __future__ import annotations

import pytest


def test_a_test_is_scheduled_with_its_area_group(request: pytest.FixtureRequest) -> None:
    # xdist sets `loadgroup` on its workers' options when the suite runs with --dist loadgroup.
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("runs under `pytest -n N --dist loadgroup`, as `make test` runs the suite")
    assert request.node.nodeid.endswith("@architecture"), request.node.nodeid
