"""The names a service answers to (platform_core/web_guard.py), as settings give them."""

from __future__ import annotations

from platform_core.web_guard import AllowedHosts
from tests.support import settings_without_dotenv


def test_an_ingress_host_in_the_settings_is_answered_by_its_service_only() -> None:
    # The cloud overlay's Ingress sends `Host: serving.example.com`: refused with 400 until
    # serving knows the name (MLOPS_LAB_ALLOWED_HOSTS).
    settings = settings_without_dotenv(allowed_hosts={"serving": ["serving.example.com"]})
    serving = AllowedHosts.of(settings, "serving")
    assert serving.host_allowed("serving.example.com")
    assert serving.origin_allowed("https://serving.example.com")
    assert not serving.host_allowed("attacker.example")
    assert not AllowedHosts.of(settings, "drift-monitor").host_allowed("serving.example.com")
    assert not AllowedHosts.of(settings_without_dotenv(), "serving").host_allowed(
        "serving.example.com"
    )
