"""The bench result model: ratios, JSON round trip, the table, section selection and the plot.

Fast and timing-free: the figures are made up; the benchmarks themselves never assert timings.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from benchmarks.__main__ import SECTIONS, selected
from benchmarks.plot import latency_plot
from benchmarks.results import SCHEMA_VERSION, Figure, Report, format_ratio, format_value
from mlops_lab.cli import bench as bench_cli
from platform_core.errors import PlatformError


def _report() -> Report:
    report = Report(quick=True)
    report.add(
        Figure("serving", "p99 at 200 req/s", 12.0, "ms", "mlflow models serve", 48.0, "< 25 ms"),
        Figure("serving", "max throughput", 900.0, "req/s", "mlflow models serve", 150.0),
        Figure("platform", "RSS total", 1400.0, "MiB"),
        Figure("drift", "Evidently", None, "s", "scipy", 0.2),
    )
    report.skipped["loop"] = "TimeoutError: DataDriftDetected did not fire"
    report.durations_s["serving"] = 95.0
    report.series["ours"] = [[50, 3.0, 9.0, 0], [200, 4.0, 12.0, 0]]
    return report


def test_the_ratio_is_value_over_baseline_and_absent_without_one() -> None:
    figures = _report().figures
    assert figures[0].ratio == pytest.approx(0.25)
    assert figures[1].ratio == pytest.approx(6.0)
    assert figures[2].ratio is None
    assert figures[3].ratio is None
    assert Figure("x", "y", 1.0, "s", "zero", 0.0).ratio is None


def test_the_report_round_trips_through_json(tmp_path: Path) -> None:
    report = _report()
    path = report.write(tmp_path / "deep" / "bench.json")
    raw = json.loads(path.read_text())
    assert raw["schema_version"] == SCHEMA_VERSION
    assert raw["figures"][1]["ratio"] == pytest.approx(6.0)
    again = Report.read(path)
    assert again.figures == report.figures
    assert again.skipped == report.skipped
    assert again.series == report.series
    assert again.quick and again.started_at == report.started_at


def test_a_result_of_another_schema_is_refused_with_the_fix(tmp_path: Path) -> None:
    raw = _report().to_dict() | {"schema_version": SCHEMA_VERSION + 1}
    with pytest.raises(ValueError, match="re-run `make bench`"):
        Report.from_dict(raw)


def test_the_table_shows_each_figure_beside_its_baseline_and_what_was_not_measured() -> None:
    console = Console(width=200, record=True)
    console.print(_report().table())
    text = console.export_text()
    p99_line = next(line for line in text.splitlines() if "p99 at 200" in line)
    for cell in ("12.0 ms", "mlflow models serve", "48.0 ms", "0.25x", "< 25 ms"):
        assert cell in p99_line
    assert "6.00x" in text
    assert "not measured: TimeoutError" in text


@pytest.mark.parametrize(
    ("value", "unit", "shown"),
    [
        (0.1234, "s", "0.12 s"),
        (43.61, "s", "43.6 s"),
        (2048.4, "MiB", "2,048 MiB"),
        (None, "s", "-"),
    ],
)
def test_values_are_formatted_by_unit(value: float | None, unit: str, shown: str) -> None:
    assert format_value(value, unit) == shown


def test_small_ratios_keep_their_digits() -> None:
    assert [format_ratio(r) for r in (None, 6.0, 0.25, 0.0043, 0.00004)] == [
        "",
        "6.00x",
        "0.25x",
        "0.004x",
        "4.0e-05x",
    ]


def test_sections_are_chosen_with_only_and_skip_in_their_usual_order() -> None:
    assert selected(None, None) == list(SECTIONS)
    assert selected("drift,serving", None) == ["serving", "drift"]
    assert "loop" not in selected(None, "loop")
    with pytest.raises(SystemExit, match=r"unknown benchmark section.*Known: platform"):
        selected("servin", None)


def test_the_plot_is_a_png_and_is_skipped_without_series(tmp_path: Path) -> None:
    path = latency_plot(_report(), tmp_path / "latency.png")
    assert path is not None and path.read_bytes().startswith(b"\x89PNG")
    assert latency_plot(Report(), tmp_path / "none.png") is None


def test_the_cli_finds_the_benchmarks_of_this_checkout() -> None:
    root = bench_cli.checkout_root()
    assert root is not None and (root / "benchmarks" / "__main__.py").is_file()


def test_without_a_checkout_the_command_says_where_the_benchmarks_run(monkeypatch) -> None:
    monkeypatch.setattr(bench_cli, "checkout_root", lambda: None)
    with pytest.raises(PlatformError, match="source checkout") as raised:
        bench_cli.bench()
    assert "make bench" in str(raised.value)
