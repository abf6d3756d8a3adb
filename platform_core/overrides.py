"""One service's own configuration file: ``<data dir>/config/<service>.env``.

The platform's settings reach every service through its environment. An operator who changes one
service's configuration without touching the others writes that service's file (``KEY=value``
lines, ``MLOPS_LAB_*`` settings); the service reads it when it starts, and it wins over the
environment. Labs use it the same way: a bad value there is a configuration change gone wrong.
Reading it is part of loading the settings (:func:`platform_core.settings.get_settings`); this
module writes and removes the files.
"""

from __future__ import annotations

from pathlib import Path

from platform_core.settings import Settings

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
