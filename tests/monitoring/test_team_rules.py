"""Rules a team owns (``config/rules/*.yml``): Prometheus loads them beside the platform's, a
restart renders the platform's rules and never the team's, and a file Prometheus would refuse is
refused before Prometheus sees it, naming the file, with the rules it had still running."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from mlops_lab.runtime.local.runtime import LocalRuntime
from mlops_lab.runtime.services import SERVICES
from platform_core import monitoring_auth
from platform_core.errors import PlatformError
from platform_core.settings import Settings
from tests.support import running_platform, wait_for

TEAM = """\
groups:
  - name: serving-team
    rules:
      - alert: ServingTeamPage
        expr: vector(1) > {threshold}
        labels:
          severity: critical
"""


def _groups(settings: Settings) -> dict[str, list[str]]:
    response = httpx.get(
        f"{settings.prometheus_url}/api/v1/rules",
        timeout=10,
        auth=monitoring_auth.auth(settings),
    )
    return {g["name"]: [r["query"] for r in g["rules"]] for g in response.json()["data"]["groups"]}


@pytest.fixture(scope="module")
def platform() -> Iterator[Settings]:
    with running_platform(["prometheus"]) as settings:
        yield settings


def test_a_teams_rules_are_loaded_beside_the_platforms_and_kept_by_a_restart(
    platform: Settings,
) -> None:
    runtime = LocalRuntime(platform, services=[s for s in SERVICES if s.name == "prometheus"])
    path = platform.paths.config / "rules" / "serving.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(TEAM.format(threshold=0))
    try:
        assert runtime.restart("prometheus") == "reloaded"
        groups = wait_for(
            lambda: (found := _groups(platform)).get("serving-team") and found,
            30,
            what="the team's group loaded",
        )
        assert "mlops-lab-platform" in groups
        assert path.read_text() == TEAM.format(threshold=0)

        # A file Prometheus would refuse: nothing is applied, and the error names it.
        path.write_text(TEAM.format(threshold=0) + "      - alert: Broken\n        expr: rate(\n")
        time.sleep(1.1)
        with pytest.raises(PlatformError) as refused:
            runtime.restart("prometheus")
        assert str(path) in str(refused.value)
        assert "promtool check rules" in (refused.value.hint or "")
        assert _groups(platform)["serving-team"] == ["vector(1) > 0"]
    finally:
        path.unlink(missing_ok=True)
        runtime.restart("prometheus")
