"""Finding the external executables the local runtime runs, and saying how to install them."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Executable:
    """An executable known under one of several names (Debian renames some of them)."""

    title: str
    names: tuple[str, ...]
    debian_package: str | None
    brew_package: str | None

    def find(self) -> Path | None:
        for name in self.names:
            found = shutil.which(name)
            if found:
                return Path(found)
        return None

    def install_hint(self) -> str:
        hints = []
        if self.debian_package:
            hints.append(f"Debian/Ubuntu: sudo apt-get install -y {self.debian_package}")
        if self.brew_package:
            hints.append(f"macOS: brew install {self.brew_package}")
        return "; ".join(hints)


PROMETHEUS = Executable("Prometheus", ("prometheus",), "prometheus", "prometheus")
# Prometheus's own command-line tool, in the same package.
PROMTOOL = Executable("promtool", ("promtool",), "prometheus", "prometheus")
ALERTMANAGER = Executable(
    "Alertmanager",
    ("alertmanager", "prometheus-alertmanager"),
    "prometheus-alertmanager",
    "alertmanager",
)
GRAFANA = Executable(
    "Grafana",
    ("grafana", "grafana-server"),
    "grafana (from Grafana's APT repository: https://grafana.com/docs/grafana/latest/setup-grafana/installation/debian/)",
    "grafana",
)


def venv_bin(name: str) -> Path:
    """An entry point installed in the same virtual environment as this code."""
    return Path(sys.executable).parent / name


def grafana_homepath(binary: Path) -> Path:
    """Grafana needs its install dir (public/, conf/); find it next to the binary."""
    real = binary.resolve()
    candidates = [
        real.parent.parent / "share" / "grafana",  # Homebrew, tarball-as-prefix
        real.parent.parent,  # tarball: <home>/bin/grafana
        Path("/usr/share/grafana"),  # Debian/RPM packages
    ]
    for candidate in candidates:
        if (candidate / "conf" / "defaults.ini").exists():
            return candidate
    return Path("/usr/share/grafana")
