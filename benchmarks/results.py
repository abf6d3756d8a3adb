"""What one benchmark run measured: figures, each beside what it is compared with.

A :class:`Figure` is one number with its unit, and optionally the baseline it is compared with
(measured in the same run, so that both saw the same machine) and the goal the issue sets. The
ratio always reads "how many times the baseline", so ``0.5`` for a latency means twice as fast.
A :class:`Report` holds every figure of a run, renders them as one Rich table and round-trips
through JSON, the machine-readable result of ``make bench``.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Figure:
    section: str
    name: str
    value: float | None
    unit: str
    baseline: str | None = None
    baseline_value: float | None = None
    goal: str | None = None
    note: str | None = None

    @property
    def ratio(self) -> float | None:
        """``value / baseline_value``; ``None`` without a baseline or when either is missing."""
        if self.value is None or self.baseline_value in (None, 0):
            return None
        return self.value / self.baseline_value


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    # Section name -> why it did not run or what failed (a benchmark never stops the whole run).
    skipped: dict[str, str] = field(default_factory=dict)
    # Section name -> wall time of the section, seconds.
    durations_s: dict[str, float] = field(default_factory=dict)
    # Raw series for the plot: {label: [[rate, p50, p99], ...]}.
    series: dict[str, list[list[float]]] = field(default_factory=dict)
    quick: bool = False
    started_at: str = field(
        default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    )
    machine: dict[str, Any] = field(default_factory=lambda: _machine())

    def add(self, *figures: Figure) -> None:
        self.figures.extend(figures)

    def section(self, name: str) -> list[Figure]:
        return [f for f in self.figures if f.section == name]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "started_at": self.started_at,
            "quick": self.quick,
            "machine": self.machine,
            "durations_s": self.durations_s,
            "skipped": self.skipped,
            "figures": [{**asdict(f), "ratio": f.ratio} for f in self.figures],
            "series": self.series,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Report:
        if raw.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(
                f"bench result schema {raw.get('schema_version')!r} is not {SCHEMA_VERSION}: "
                "re-run `make bench` to produce a current one"
            )
        fields = {n for n in Figure.__dataclass_fields__}
        figures = [Figure(**{k: v for k, v in f.items() if k in fields}) for f in raw["figures"]]
        return cls(
            figures=figures,
            skipped=dict(raw.get("skipped", {})),
            durations_s=dict(raw.get("durations_s", {})),
            series={k: [list(p) for p in v] for k, v in raw.get("series", {}).items()},
            quick=bool(raw.get("quick", False)),
            started_at=raw["started_at"],
            machine=dict(raw.get("machine", {})),
        )

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def read(cls, path: Path) -> Report:
        return cls.from_dict(json.loads(path.read_text()))

    def table(self) -> Table:
        table = Table(title="mlops-lab bench" + (" (quick)" if self.quick else ""))
        for column in ("Section", "Figure", "Value", "Compared with", "Baseline", "Ratio", "Goal"):
            numeric = column in {"Value", "Baseline", "Ratio"}
            table.add_column(column, justify="right" if numeric else "left", no_wrap=numeric)
        previous = None
        for figure in self.figures:
            ratio = figure.ratio
            table.add_row(
                figure.section if figure.section != previous else "",
                figure.name + (f" [dim]({figure.note})[/]" if figure.note else ""),
                format_value(figure.value, figure.unit),
                figure.baseline or "",
                format_value(figure.baseline_value, figure.unit) if figure.baseline else "",
                format_ratio(ratio),
                figure.goal or "",
            )
            previous = figure.section
        for section, reason in self.skipped.items():
            table.add_row(section, f"[yellow]not measured: {reason}[/]", "", "", "", "", "")
        return table


def main(measure: Callable[[Report, bool], None]) -> None:
    """One section on its own, ``python -m benchmarks.bench_NAME [--quick]``: its table only."""
    report = Report(quick="--quick" in sys.argv)
    measure(report, report.quick)
    Console().print(report.table())


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in {"s", "ms"}:
        digits = 2 if abs(value) < 10 else 1
        return f"{value:,.{digits}f} {unit}"
    if unit in {"MiB", "req/s", "rows"}:
        return f"{value:,.0f} {unit}"
    return f"{value:,.3g} {unit}".strip()


def format_ratio(ratio: float | None) -> str:
    if ratio is None:
        return ""
    return (
        f"{ratio:.2f}x" if ratio >= 0.1 else f"{ratio:.3f}x" if ratio >= 0.001 else f"{ratio:.1e}x"
    )


def _machine() -> dict[str, Any]:
    import os

    import psutil

    return {
        "python": platform.python_version(),
        "system": platform.platform(),
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average_1m": os.getloadavg()[0],
    }
