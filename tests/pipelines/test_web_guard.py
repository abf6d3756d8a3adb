"""What a web page could make the learner's browser send to Prefect and the flows service is
refused; Prefect's own client, which the CLI, the flows service and the receiver use, still works.
"""

from __future__ import annotations

import httpx

from platform_core.settings import Settings
from tests.support import prefect_api

ATTACKER = "http://attacker.example"


def _flows_health(settings: Settings, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(settings.url(settings.flows_port, "/health"), headers=headers, timeout=10)


def test_the_flows_health_refuses_a_foreign_host_with_400(platform: Settings) -> None:
    response = _flows_health(platform, {"host": "attacker.example"})
    assert response.status_code == 400
    assert "attacker.example" in response.json()["error"]


def test_the_flows_health_answers_a_probe_at_the_pods_address(platform: Settings) -> None:
    response = _flows_health(platform, {"host": f"10.244.0.7:{platform.flows_port}"})
    assert response.json()["status"] in {"ok", "starting", "stale"}


def test_the_flows_health_refuses_another_sites_page_with_403(platform: Settings) -> None:
    assert _flows_health(platform, {"origin": ATTACKER}).status_code == 403


def test_prefect_allows_no_cross_origin_call_from_another_site(platform: Settings) -> None:
    preflight = httpx.options(
        f"{platform.prefect_api_url}/deployments/filter",
        headers={
            "origin": ATTACKER,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
        timeout=10,
    )
    assert preflight.headers.get("access-control-allow-origin") not in {"*", ATTACKER}


def test_prefect_allows_cross_origin_calls_from_its_ui_on_localhost(platform: Settings) -> None:
    """The UI opened at localhost calls the API at the configured host (PREFECT_UI_API_URL)."""
    ui = f"http://localhost:{platform.prefect_port}"
    preflight = httpx.options(
        f"{platform.prefect_api_url}/deployments/filter",
        headers={"origin": ui, "access-control-request-method": "POST"},
        timeout=10,
    )
    assert preflight.headers.get("access-control-allow-origin") == ui


def test_prefect_refuses_a_change_without_a_csrf_token(platform: Settings) -> None:
    response = httpx.post(f"{platform.prefect_api_url}/deployments/filter", json={}, timeout=10)
    assert response.status_code == 403
    assert "CSRF" in response.text


def test_prefects_client_fetches_the_token_and_gets_through(platform: Settings) -> None:
    from prefect.client.orchestration import get_client

    with prefect_api(platform), get_client(sync_client=True) as client:
        names = {d.name for d in client.read_deployments()}  # a POST: .../deployments/filter
    assert {"train", "retrain"} <= names
