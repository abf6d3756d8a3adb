"""One service's own configuration file: ``<data dir>/config/<service>.env``.

The platform's settings reach every service through its environment. An operator who changes one
service's configuration without touching the others writes that service's file (``KEY=value``
lines, ``MLOPS_LAB_*`` settings); the service reads it when it starts, and it wins over the
environment. Labs use it the same way: a bad value there is a configuration change gone wrong.
"""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import dotenv_values

from mlops_lab.core.settings import ENV_PREFIX, Settings

# Set by the runtime for each process it starts: which service's file applies.
SERVICE_VARIABLE = f"{ENV_PREFIX}SERVICE"
_HEADER = "# Configuration of the {service} service only; it wins over the platform's settings.\n"


def directory(settings: Settings) -> Path:
    return settings.paths.config


def path_for(settings: Settings, service: str) -> Path:
    return directory(settings) / f"{service}.env"


def write(settings: Settings, service: str, values: dict[str, str]) -> Path:
    path = path_for(settings, service)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = "".join(f"{key}={value}\n" for key, value in values.items())
    path.write_text(_HEADER.format(service=service) + lines)
    return path


def clear(settings: Settings) -> list[str]:
    """Remove every service's file; returns the services that had one."""
    folder = directory(settings)
    if not folder.exists():
        return []
    cleared = []
    for path in sorted(folder.glob("*.env")):
        path.unlink()
        cleared.append(path.stem)
    return cleared


def applied_file() -> Path | None:
    """The file this process's service reads, if the runtime named the service and it exists."""
    service = os.environ.get(SERVICE_VARIABLE)
    home = os.environ.get(f"{ENV_PREFIX}HOME")
    if not service or not home:
        return None
    path = Path(home) / "config" / f"{service}.env"
    return path if path.exists() else None


def apply_to_environment() -> Path | None:
    """Load this service's file into the environment (it wins); returns the file it read."""
    path = applied_file()
    if path is None:
        return None
    for key, value in dotenv_values(path).items():
        if value is not None:
            os.environ[key] = value
    return path
