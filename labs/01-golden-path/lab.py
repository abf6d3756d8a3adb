"""Lab 01: nothing is broken; the learner ships a model and proves which version serves, how
busy it is and how long a customer waits. The wait is a figure only Prometheus has (the
registry knows the version and the client's configuration its rate; neither measures time).

The variants vary which wait the product team asks for: the median, the 90th or the 99th
percentile, each its own quantile of the same histogram and its own answer.
"""

from __future__ import annotations

from mlops_lab.lab_engine.kit import Condition, LabContext, variant_of
from mlops_lab.lab_engine.progress import LabProgress

# Which wait the product team asks for: the quantile, the answer's name, and how they say it.
VARIANTS = (
    {
        "quantile": 0.5,
        "answer": "median_ms",
        "wait": "the median wait",
        "asks": "how long does a customer typically wait for an answer",
    },
    {
        "quantile": 0.9,
        "answer": "p90_ms",
        "wait": "the 90th percentile of the wait",
        "asks": "how long do the slowest tenth of customers wait at least",
    },
    {
        "quantile": 0.99,
        "answer": "p99_ms",
        "wait": "the 99th percentile of the wait",
        "asks": "how long does the slowest customer in a hundred wait at least",
    },
)
RATE = 'sum(rate(bentoml_service_request_total{endpoint="/predict"}[1m]))'
MIN_ANSWERS = 20
# A quantile of the time serving takes to answer /predict, from BentoML's histogram.
QUANTILE = (
    "histogram_quantile(Q, sum by (le) "
    '(rate(bentoml_service_request_duration_seconds_bucket{endpoint="/predict"}[WINDOW])))'
)
WINDOWS = ("1m", "5m")


def _query(quantile: float, window: str) -> str:
    return QUANTILE.replace("Q", f"{quantile:g}", 1).replace("WINDOW", window)


def start(ctx: LabContext, variant: dict) -> dict:
    ctx.say(
        "[bold]Lab 01.[/] The product team asks: is the loan model live, which version answers, "
        f"how many applications per second does it take, and {variant['asks']}? The loan front "
        "end is sending traffic now. Report with "
        f"`mlops-lab lab answer 01 version=N rate=R {variant['answer']}=M`."
    )
    return {}


# The same rate between the last two scrapes: the traffic's own from its first scrapes on, while
# the minute's rate climbs for a minute after the traffic starts.
NOW_RATE = RATE.replace("rate(", "irate(", 1)


def _rate(ctx: LabContext, expr: str = RATE) -> float:
    return ctx.query_value(expr) or 0.0


def _close(said: float | None, measured: float) -> bool:
    return said is not None and measured > 0 and abs(said - measured) <= 0.5 * measured


def _wait_ms(ctx: LabContext, quantile: float, window: str) -> float | None:
    value = ctx.query_value(_query(quantile, window))
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
    variant = variant_of(VARIANTS, progress.state)
    key, quantile = variant["answer"], variant["quantile"]
    said_wait = _float(progress.answers.get(key))
    measured_waits = {window: _wait_ms(ctx, quantile, window) for window in WINDOWS}
    # A reading of either window, taken a few minutes before the check, counts.
    wait_close = any(_within_twice(said_wait, m) for m in measured_waits.values())
    waits = ", ".join(
        f"{m:.1f} ms over {window}" if m is not None else f"none over {window}"
        for window, m in measured_waits.items()
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
            "your answer: the wait for an answer",
            wait_close,
            f"you reported {said_wait} ms as {variant['wait']}; Prometheus measures {waits}",
            f"no answer for {variant['wait']} yet (`mlops-lab lab answer 01 {key}=M`)"
            if said_wait is None
            else f"you reported {said_wait} ms as {variant['wait']}; Prometheus measures "
            f"{waits} (between half and twice either counts)",
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
    variant = variant_of(VARIANTS, progress.state)
    return [
        first,
        "The loaded version is a label of `serving_model_info`. BentoML counts requests in "
        "`bentoml_service_request_total`, labelled by endpoint, and times them in the histogram "
        "`bentoml_service_request_duration_seconds` (its `_bucket` series).",
        f"Query `serving_model_info`, `{RATE}` and "
        f"`{_query(variant['quantile'], '5m')}` (seconds), then "
        f"`mlops-lab lab answer 01 version=<N> rate=<R> {variant['answer']}=<M>`.",
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
    variant = variant_of(VARIANTS, progress.state)
    wait = ctx.wait_until(
        lambda: _wait_ms(ctx, variant["quantile"], WINDOWS[0]),
        60,
        f"{variant['wait']} of /predict in Prometheus",
    )
    progress.answers.update(
        {"version": version, "rate": f"{readings[-1]:.2f}", variant["answer"]: f"{wait:.1f}"}
    )


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None
