"""The drift monitor and the alert receiver refuse what a web page could make the learner's
browser send (platform_core.web_guard); Prometheus, Alertmanager and scripts still get through.

Every request here is refused before it reaches a handler: none runs a check or forgets an
incident, so the area's other tests see the platform as they left it."""

from __future__ import annotations

import httpx
import pytest

from platform_core import promql
from platform_core.settings import Settings
from tests.support import wait_for


def _monitor(settings: Settings, path: str) -> str:
    return settings.url(settings.drift_monitor_port, path)


def _receiver(settings: Settings, path: str) -> str:
    return settings.url(settings.alert_receiver_port, path)


@pytest.mark.parametrize("url", [_monitor, _receiver], ids=["drift-monitor", "alert-receiver"])
def test_a_foreign_host_is_refused_with_400(platform: Settings, url) -> None:
    response = httpx.get(
        url(platform, "/healthz"), headers={"host": "attacker.example"}, timeout=10
    )
    assert response.status_code == 400
    assert "attacker.example" in response.json()["error"]


def test_a_check_asked_for_by_another_site_is_refused_with_403(platform: Settings) -> None:
    origin = {"origin": "http://attacker.example"}
    response = httpx.post(_monitor(platform, "/check"), headers=origin, timeout=10)
    assert response.status_code == 403


def test_a_check_asked_for_through_a_rebound_name_is_refused_with_400(platform: Settings) -> None:
    host = {"host": "attacker.example"}
    response = httpx.post(_monitor(platform, "/check"), headers=host, timeout=10)
    assert response.status_code == 400


def test_forgetting_incidents_from_another_site_is_refused_with_403(platform: Settings) -> None:
    origin = {"origin": "http://attacker.example"}
    response = httpx.post(_receiver(platform, "/incidents/forget"), headers=origin, timeout=10)
    assert response.status_code == 403


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_form_or_text_post_is_refused_with_415(platform: Settings, content_type: str) -> None:
    headers = {"content-type": content_type}
    for url in (_monitor(platform, "/check"), _receiver(platform, "/incidents/forget")):
        response = httpx.post(url, content=b"x=1", headers=headers, timeout=10)
        assert response.status_code == 415, url


def test_alertmanager_on_a_cluster_reaches_the_receiver_by_its_service_name(
    platform: Settings,
) -> None:
    """The in-cluster Alertmanager posts to alert-receiver.mlops-lab.svc (AlertmanagerConfig)."""
    port = platform.alert_receiver_port
    host = {"host": f"alert-receiver.mlops-lab.svc:{port}"}
    # A notification that is not valid gets past the guard to FastAPI's own validation.
    response = httpx.post(_receiver(platform, "/alerts/log"), json={}, headers=host, timeout=10)
    assert response.status_code == 422


def test_prometheus_still_scrapes_both(platform: Settings) -> None:
    def scraped() -> bool:
        up = promql.query(platform, 'up{job=~"drift-monitor|alert-receiver"}')
        return len(up) == 2 and all(sample["value"] == 1 for sample in up)

    wait_for(scraped, 30, what="Prometheus to scrape the monitor and the receiver")
