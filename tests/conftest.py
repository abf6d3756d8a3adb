"""Fixtures shared by every test area. Area conftests start the services they need with
:func:`tests.support.running_platform`."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from mlops_lab.core.settings import Settings
from tests.support import make_settings


# Each area starts its own platform, so areas run in parallel (`pytest -n 2 --dist loadgroup`,
# what `make test` does): the suite mostly waits on services, not on the CPU. Tests of one area
# stay on one worker, where its package-scoped platform starts once. The lab cycles are split in
# two groups, each with a platform of its own, because they are the longest area by far.
def _group(item: pytest.Item) -> str:
    parts = item.path.relative_to(item.config.rootpath / "tests").parts
    area = parts[0] if len(parts) > 1 else "root"
    if area == "labs":
        lab_id = getattr(getattr(item, "callspec", None), "params", {}).get("lab_id")
        late = lab_id is not None and lab_id > LAB_SPLIT and lab_id not in EARLY_AFTER_SPLIT
        return "labs-late" if late else "labs-early"
    return area


LAB_SPLIT = "05"
# Later labs run with the early ones where that keeps the two groups' wall times balanced.
EARLY_AFTER_SPLIT = {"07", "10"}


# First, before xdist's own hook reads the markers into the node ids it schedules by: it is
# registered after this conftest, so it would otherwise run first and never see them.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(_group(item)))


@pytest.fixture
def lab_settings() -> Iterator[Settings]:
    """Settings for a platform that is not started: free ports, a temp data dir removed after."""
    settings = make_settings()
    yield settings
    shutil.rmtree(settings.home, ignore_errors=True)
    shutil.rmtree(settings.learner_home, ignore_errors=True)
