"""The monitoring password: generated once per data dir, private, and the same hash on every
rendering; no credentials where none was generated (a cluster's data dir)."""

from __future__ import annotations

import base64
import stat

import bcrypt
import httpx

from platform_core import monitoring_auth
from platform_core.settings import Settings


def test_the_password_is_generated_once_readable_by_its_owner_only(
    unstarted_settings: Settings,
) -> None:
    paths = unstarted_settings.paths
    assert monitoring_auth.ensure_password(paths) is True
    first = paths.monitoring_password.read_text()
    assert stat.S_IMODE(paths.monitoring_password.stat().st_mode) == 0o600
    assert len(first.strip()) >= 32
    assert monitoring_auth.ensure_password(paths) is False
    assert paths.monitoring_password.read_text() == first
    assert not [p for p in paths.secrets.iterdir() if p.name.startswith(".")]  # no draft left


def test_the_hash_is_kept_so_every_rendering_is_the_same(unstarted_settings: Settings) -> None:
    paths = unstarted_settings.paths
    hashed = monitoring_auth.password_hash(paths)
    assert monitoring_auth.password_hash(paths) == hashed
    assert bcrypt.checkpw(monitoring_auth.password(paths).encode(), hashed.encode())
    assert stat.S_IMODE(paths.monitoring_password_hash.stat().st_mode) == 0o600


def test_a_replaced_password_gets_a_new_hash(unstarted_settings: Settings) -> None:
    paths = unstarted_settings.paths
    old = monitoring_auth.password_hash(paths)
    paths.monitoring_password.unlink()
    monitoring_auth.ensure_password(paths)
    new = monitoring_auth.password_hash(paths)
    assert new != old
    assert bcrypt.checkpw(monitoring_auth.password(paths).encode(), new.encode())


def test_clients_send_no_credentials_where_no_password_was_generated(
    unstarted_settings: Settings,
) -> None:
    assert monitoring_auth.auth(unstarted_settings) is None
    monitoring_auth.ensure_password(unstarted_settings.paths)
    login = monitoring_auth.auth(unstarted_settings)
    assert login is not None
    request = next(login.auth_flow(httpx.Request("GET", "http://127.0.0.1/")))
    scheme, encoded = request.headers["authorization"].split()
    user, password = base64.b64decode(encoded).decode().split(":", 1)
    assert scheme == "Basic"
    assert user == monitoring_auth.USER
    assert password == monitoring_auth.password(unstarted_settings.paths)
