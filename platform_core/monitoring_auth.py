"""The password Prometheus and Alertmanager ask for on the local runtime, and the one way each of
their clients sends it.

Neither checks Host or Origin, and Alertmanager allows every origin: on 127.0.0.1, any web page
the learner opens could post an alert that starts a retrain, or a silence that mutes every page.
So the local runtime generates a password for user ``mlops-lab`` once per data dir
(``secrets/monitoring-password``, mode 0600) and starts both with a web config that asks every
request for it (:mod:`monitoring.configs`).

A cluster's Prometheus and Alertmanager (kube-prometheus-stack) ask for nothing, and nothing on a
cluster generates the password: where there is none, :func:`auth` is ``None`` and clients send
no credentials.
"""

from __future__ import annotations

import functools
import os
import secrets
from pathlib import Path

import bcrypt
import httpx

from platform_core.paths import DataPaths, private_file
from platform_core.settings import Settings

USER = "mlops-lab"


def auth(settings: Settings) -> httpx.BasicAuth | None:
    """What a client of Prometheus or Alertmanager passes as httpx's ``auth``: the platform's
    credentials, or ``None`` where no password was generated (a cluster's)."""
    secret = _read(settings.paths.monitoring_password)
    return None if secret is None else httpx.BasicAuth(USER, secret)


def password(paths: DataPaths) -> str:
    """The password, generated first if this data dir has none."""
    ensure_password(paths)
    return paths.monitoring_password.read_text().strip()


def ensure_password(paths: DataPaths) -> bool:
    """Generate the password unless this data dir has one; returns whether it did."""
    path = paths.monitoring_password
    if path.exists():
        return False
    # Written whole under another name first, then linked: a reader never sees it half written,
    # and a password another `up` made meanwhile is kept, not replaced.
    draft = private_file(
        path.with_name(f".{path.name}.{os.getpid()}"), secrets.token_urlsafe(24) + "\n"
    )
    try:
        os.link(draft, path)
    except FileExistsError:
        return False
    finally:
        draft.unlink()
    return True


def password_hash(paths: DataPaths) -> str:
    """The password's bcrypt hash, for the web config. Made once per password and kept beside
    it: a new salt on every rendering would make the config of a running platform look
    changed, and `up` refuses to change a running platform's configs."""
    current = password(paths)
    stored = _read(paths.monitoring_password_hash)
    if stored is not None and _matches(current, stored):
        return stored
    # Cost 10, as Prometheus's own docs use: the password is 192 random bits, which no cost
    # factor protects further, and the servers check the hash on each uncached request.
    hashed = bcrypt.hashpw(current.encode(), bcrypt.gensalt(rounds=10)).decode()
    private_file(paths.monitoring_password_hash, hashed + "\n")
    return hashed


@functools.cache
def _matches(password: str, hashed: str) -> bool:
    # bcrypt is slow on purpose: once per process is enough.
    return bcrypt.checkpw(password.encode(), hashed.encode())


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return None
