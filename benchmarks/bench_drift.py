"""How long one drift check takes: Evidently over 10 features, and reading the window from the log.

Prints the median of several runs (after a warm-up) for windows of 1,000 rows (the default) and
10,000 rows, against the default 5,000-row reference sample and a 10,000-row one; and the time
to read a 10,000-row window from a SQLite prediction log (JSON features decoded into a frame).
No services are needed: the data comes from the loan generator.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from mlops_lab.core import prediction_log
from monitoring.assets import default_settings
from monitoring.drift import compute_drift
from pipelines import data
from tests.models import TYPES
from tests.support import log_predictions

REPEATS = 5
console = Console()


def _median_s(action: Callable[[], object], repeats: int = REPEATS) -> float:
    action()  # warm-up: first calls pay for lazy imports and caches
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    settings = default_settings()
    table = Table(
        "Reference rows", "Window rows", "Scenario", "Drift (median)", title="Evidently drift"
    )
    cases = [
        (5_000, 1_000, "baseline"),
        (5_000, 10_000, "baseline"),
        (5_000, 10_000, "covariate_shift"),
        (10_000, 10_000, "covariate_shift"),
    ]
    for reference_rows, window_rows, scenario in cases:
        reference = data.generate(reference_rows, "baseline", seed=1)
        window = data.generate(window_rows, scenario, seed=2)
        seconds = _median_s(lambda r=reference, w=window: compute_drift(r, w, TYPES, settings))
        table.add_row(f"{reference_rows:,}", f"{window_rows:,}", scenario, f"{seconds:.2f} s")
    console.print(table)

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'predictions.db'}"
        engine = prediction_log.connect(url)
        log_settings = settings.model_copy(update={"prediction_log_url": url})
        log_predictions(engine, log_settings.model_name, data.generate(10_000, seed=3), "1")
        seconds = _median_s(lambda: prediction_log.read_recent(engine, 10_000))
        engine.dispose()
    console.print(f"Reading a 10,000-row window from the SQLite prediction log: {seconds:.2f} s")
    console.print(
        f"(median of {REPEATS} runs after a warm-up; 10 features: 8 numeric, 2 categorical)"
    )


if __name__ == "__main__":
    main()
