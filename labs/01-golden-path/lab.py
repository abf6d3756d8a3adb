"""Lab 01: nothing is broken; the learner ships a model and proves which version serves, how
busy it is and how long a customer waits. The wait is a figure only Prometheus has (the
registry knows the version and the client's configuration its rate; neither measures time)."""

from __future__ import annotations

from mlops_lab.lab_engine.kit import Condition, LabContext
from mlops_lab.lab_engine.progress import LabProgress

RATE = 'sum(rate(bentoml_service_request_total{endpoint="/predict"}[1m]))'
MIN_ANSWERS = 20
# The median time serving takes to answer /predict, from BentoML's histogram.
MEDIAN = (
    "histogram_quantile(0.5, sum by (le) "
    '(rate(bentoml_service_request_duration_seconds_bucket{endpoint="/predict"}[WINDOW])))'
)
WINDOWS = ("1m", "5m")


def start(ctx: LabContext) -> dict:
    ctx.say(
        "[bold]Lab 01.[/] The product team asks: is the loan model live, which version answers, "
        "how many applications per second does it take, and how long does a customer wait for an "
        "answer? The loan front end is sending traffic now. Report with "
        "`mlops-lab lab answer 01 version=N rate=R median_ms=M`."
    )
    return {}


# The same rate between the last two scrapes: the traffic's own from its first scrapes on, while
# the minute's rate climbs for a minute after the traffic starts.
NOW_RATE = RATE.replace("rate(", "irate(", 1)


def _rate(ctx: LabContext, expr: str = RATE) -> float:
    return ctx.query_value(expr) or 0.0


def _close(said: float | None, measured: float) -> bool:
    return said is not None and measured > 0 and abs(said - measured) <= 0.5 * measured


def _median_ms(ctx: LabContext, window: str) -> float | None:
    value = ctx.query_value(MEDIAN.replace("WINDOW", window))
    return value * 1000 if value is not None else None


def _within_twice(said: float | None, measured: float | None) -> bool:
    return bool(said and measured and measured / 2 <= said <= measured * 2)


def check(ctx: LabContext, progress: LabProgress) -> list[Condition]:
    champion = ctx.champion()
    version = str(champion.version) if champion else None
    answered = len(ctx.logged(progress.require_started_at(), version=version)) if version else 0
    info = ctx.query(f'serving_model_info{{version="{version}"}}') if version else []
    rate, now_rate = _rate(ctx), _rate(ctx, NOW_RATE)
    said_version = progress.answers.get("version", "").removeprefix("v")
    said_rate = _float(progress.answers.get("rate"))
    # Read off a graph of either rate, right after the traffic started or minutes later.
    rate_close = _close(said_rate, rate) or _close(said_rate, now_rate)
    measured = f"Prometheus measures {rate:.1f} over the last minute, {now_rate:.1f} now"
    said_median = _float(progress.answers.get("median_ms"))
    medians = {window: _median_ms(ctx, window) for window in WINDOWS}
    # A reading of either window, taken a few minutes before the check, counts.
    median_close = any(_within_twice(said_median, m) for m in medians.values())
    waits = ", ".join(
        f"{m:.1f} ms over {window}" if m is not None else f"none over {window}"
        for window, m in medians.items()
    )
    return [
        Condition.of(
            "a champion exists",
            champion is not None,
            f"v{version} holds the champion alias",
            "no version holds the champion alias yet: train one (`make train`)",
        ),
        Condition.of(
            "the champion served live traffic",
            answered >= MIN_ANSWERS,
            f"v{version} answered {answered} requests since the lab started",
            f"the champion answered {answered} requests since the lab started; "
            f"at least {MIN_ANSWERS} are needed (is serving ready?)",
        ),
        Condition.of(
            "Prometheus knows the served version and the request rate",
            bool(info) and rate > 0,
            f"serving_model_info shows v{version}; /predict takes {rate:.1f} requests/s",
            "Prometheus has no serving_model_info for the champion, or no /predict rate yet",
        ),
        Condition.of(
            "your answer: the version",
            bool(version) and said_version == version,
            f"you reported v{said_version}",
            "no version reported yet (`mlops-lab lab answer 01 version=N`)"
            if not said_version
            else f"you reported v{said_version}, which is not the version that answers",
        ),
        Condition.of(
            "your answer: the request rate",
            rate_close,
            f"you reported {said_rate} requests/s; {measured}",
            "no rate reported yet (`mlops-lab lab answer 01 rate=R`)"
            if said_rate is None
            else f"you reported {said_rate} requests/s; {measured} (within 50% of either counts)",
        ),
        Condition.of(
            "your answer: the median wait for an answer",
            median_close,
            f"you reported {said_median} ms; Prometheus measures {waits}",
            "no median reported yet (`mlops-lab lab answer 01 median_ms=M`)"
            if said_median is None
            else f"you reported {said_median} ms; Prometheus measures {waits} (between half "
            "and twice either counts)",
        ),
    ]


def hints(ctx: LabContext, progress: LabProgress) -> list[str]:
    champion = ctx.champion()
    first = (
        "There is no champion yet: `make train` trains, registers and gates one."
        if champion is None
        else "Serving exports what it serves as metrics, and Prometheus scrapes them. In the "
        "Prometheus Graph page, type `serving_` and look at what completes."
    )
    return [
        first,
        "The loaded version is a label of `serving_model_info`. BentoML counts requests in "
        "`bentoml_service_request_total`, labelled by endpoint, and times them in the histogram "
        "`bentoml_service_request_duration_seconds` (its `_bucket` series).",
        f"Query `serving_model_info`, `{RATE}` and "
        f"`{MEDIAN.replace('WINDOW', '5m')}` (seconds), then "
        "`mlops-lab lab answer 01 version=<N> rate=<R> median_ms=<M>`.",
    ]


def solve(ctx: LabContext, progress: LabProgress) -> None:
    # The rate over a minute climbs for a minute after the traffic starts, and two readings of
    # it can agree on a value still climbing (a scrape late on busy cores gives the same value
    # twice). The rate between the last two scrapes is the traffic's own from the first scrapes
    # on: report it once two readings agree.
    readings: list[float] = []

    def settled() -> bool:
        readings.append(_rate(ctx, NOW_RATE))
        if len(readings) < 2 or readings[-1] <= 0:
            return False
        return abs(readings[-1] - readings[-2]) <= 0.1 * readings[-1]

    ctx.wait_until(
        settled, 180, "a steady /predict rate in Prometheus", every_s=ctx.settings.scrape_interval_s
    )
    version = str(ctx.require_champion().version)
    median = ctx.wait_until(
        lambda: _median_ms(ctx, WINDOWS[0]), 60, "the median /predict time in Prometheus"
    )
    progress.answers.update(
        {"version": version, "rate": f"{readings[-1]:.2f}", "median_ms": f"{median:.1f}"}
    )


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None
