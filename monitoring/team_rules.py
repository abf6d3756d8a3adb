"""Prometheus rules the platform's users own: ``<data dir>/config/rules/*.yml``.

The platform renders its own rules from the settings on every start (:mod:`monitoring.rules`); a
team's service-level alerts are theirs to write, so they live apart, in Prometheus's rule format,
and nothing the platform does (`up`, `restart`, a lab's reset) renders over them. Prometheus
loads both. It refuses to start on a rule file it cannot read, and on a reload it logs the error
and keeps the rules it had: either way the fault would show far from its cause, so the runtime
checks these files with ``promtool check rules`` before it starts or reloads Prometheus.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from platform_core.settings import Settings


def directory(settings: Settings) -> Path:
    return settings.paths.team_rules


def pattern(settings: Settings) -> Path:
    """What Prometheus's ``rule_files`` lists: every YAML file in the directory."""
    return directory(settings) / "*.yml"


def files(settings: Settings) -> list[Path]:
    folder = directory(settings)
    return sorted(folder.glob("*.yml")) if folder.is_dir() else []


def problems(settings: Settings, promtool: Path) -> list[str]:
    """What ``promtool check rules`` says is wrong with each file (nothing when all are sound)."""
    found = []
    for path in files(settings):
        result = subprocess.run(
            [str(promtool), "check", "rules", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            said = " ".join((result.stderr or result.stdout).split())
            found.append(f"{path}: {said[:600]}")
    return found
