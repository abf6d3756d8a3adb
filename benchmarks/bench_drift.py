"""One drift check: Evidently (what the monitor runs) beside per-column scipy tests.

Evidently over a 10,000-row reference and a 10,000-row window of 10 features (8 numeric, 2
categorical), beside a Kolmogorov-Smirnov test per numeric column and a chi-square test per
categorical column on the same data: the computational limit of a per-column drift check. The
monitor calls Evidently's statistical tests without its report; the full report (what
`drift check --html` runs, drawing a plotly figure per metric) is timed beside it at the
monitor's sizes. Also the time to read a 10,000-row window from a SQLite prediction log. No
services are needed.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from scipy import stats

from benchmarks import results
from benchmarks.results import Figure, Report
from monitoring.assets import default_settings
from monitoring.drift import compute_drift
from pipelines import data
from platform_core import prediction_log
from tests.models import TYPES
from tests.support import log_predictions

SECTION = "drift"
ROWS = 10_000


def median_s(action: Callable[[], object], repeats: int) -> float:
    action()  # warm-up: first calls pay for lazy imports and caches
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def scipy_drift(reference: pd.DataFrame, window: pd.DataFrame) -> dict[str, float]:
    """p-value per feature: two-sample KS for numbers, chi-square on the counts for categories."""
    p_values = {}
    for name in TYPES.names:
        ref, cur = reference[name].dropna(), window[name].dropna()
        if TYPES.kinds[name] == "numeric":
            # scipy builds its result types at run time, which pyright cannot follow.
            p_values[name] = float(stats.ks_2samp(ref, cur).pvalue)  # pyright: ignore[reportAttributeAccessIssue]
        else:
            counts = pd.concat(
                [ref.value_counts(), cur.value_counts()], axis=1, keys=["ref", "cur"]
            ).fillna(0)
            p_values[name] = float(stats.chi2_contingency(counts.to_numpy().T)[1])  # pyright: ignore[reportArgumentType]
    return p_values


def measure(report: Report, quick: bool = False) -> None:
    repeats = 2 if quick else 5
    settings = default_settings()
    reference = data.generate(ROWS, "baseline", seed=1)
    window = data.generate(ROWS, "covariate_shift", seed=2)
    evidently_s = median_s(lambda: compute_drift(reference, window, TYPES, settings), repeats)
    scipy_s = median_s(lambda: scipy_drift(reference, window), repeats)
    default_window = data.generate(settings.drift_window_rows, "baseline", seed=3)
    default_reference = reference.head(settings.reference_rows)
    monitor_s = median_s(
        lambda: compute_drift(default_reference, default_window, TYPES, settings), repeats
    )
    report_s = median_s(
        lambda: compute_drift(default_reference, default_window, TYPES, settings, True), repeats
    )
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'predictions.db'}"
        engine = prediction_log.connect(url)
        log_predictions(engine, settings.model_name, data.generate(ROWS, seed=3), "1")
        read_s = median_s(lambda: prediction_log.read_recent(engine, ROWS), repeats)
        engine.dispose()
    rows = f"{ROWS:,} × {len(TYPES.names)}"
    report.add(
        Figure(
            SECTION,
            f"Evidently, {rows} vs {ROWS:,}",
            evidently_s,
            "s",
            "scipy KS / chi-square per column",
            scipy_s,
        ),
        Figure(
            SECTION,
            f"Evidently, monitor defaults ({settings.drift_window_rows:,} vs "
            f"{settings.reference_rows:,} rows)",
            monitor_s,
            "s",
            "Evidently's full report (its HTML)",
            report_s,
            note=f"every {settings.drift_interval_s:.0f} s",
        ),
        Figure(
            SECTION,
            f"read a {ROWS:,}-row window from the SQLite log",
            read_s,
            "s",
            "Evidently on it",
            evidently_s,
        ),
    )


if __name__ == "__main__":
    results.main(measure)
