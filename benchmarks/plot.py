"""Serving latency against request rate, ours beside `mlflow models serve`: one PNG."""

from __future__ import annotations

from pathlib import Path

from benchmarks.results import Report


def latency_plot(report: Report, path: Path) -> Path | None:
    """Draw p50 and p99 against the request rate for every series; ``None`` without series."""
    if not report.series:
        return None
    import matplotlib

    matplotlib.use("Agg")  # no display: render straight to a file
    from matplotlib import pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5), dpi=120)
    for index, (label, points) in enumerate(sorted(report.series.items())):
        color = f"C{index}"
        rates = [p[0] for p in points]
        axis.plot(rates, [p[2] for p in points], "o-", color=color, label=f"{label} p99")
        axis.plot(
            rates, [p[1] for p in points], "o--", color=color, alpha=0.6, label=f"{label} p50"
        )
    axis.set_xlabel("requests per second (open loop, one record each)")
    axis.set_ylabel("latency, ms (log scale)")
    axis.set_yscale("log")
    axis.set_title("Serving latency against request rate")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
