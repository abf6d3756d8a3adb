"""How long `mlops-lab up` takes (venv present), and how much memory and idle CPU the running
platform uses.

Starts a throwaway platform on free ports in a temp dir, exactly as `make up` would, and measures
the time from `up` to every service healthy, cold (empty data dir) and after `down`, with the
moment each service first answered its health check (where the time goes), and the resident
memory of each service's process tree (psutil; RSS is not distorted by other load).
"""

from __future__ import annotations

import shutil
import threading
import time

import httpx
import psutil

from benchmarks import results
from benchmarks.results import Figure, Report
from mlops_lab.runtime.local.runtime import LocalRuntime
from mlops_lab.runtime.services import SERVICES, runnable
from platform_core import http_calls
from tests.support import make_settings, run_cli

SECTION = "platform"
GOALS = {"cold": 30.0, "after down": 20.0, "rss_mib": 1.5 * 1024}


class HealthWatch:
    """Polls every service's health URL while `up` runs; records when each first answered."""

    def __init__(self, settings) -> None:
        self.settings = settings
        self.first_healthy: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> HealthWatch:
        self.started = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        services = [s for s in runnable() if not s.on_demand]
        with httpx.Client(timeout=1.0) as client:
            while not self._stop.is_set():
                for service in services:
                    if service.name in self.first_healthy:
                        continue
                    try:
                        response = client.get(service.url(self.settings, service.health_path))
                    except httpx.HTTPError:
                        continue
                    if response.status_code == 200:
                        self.first_healthy[service.name] = time.perf_counter() - self.started
                self._stop.wait(0.2)


def _timed_up(settings) -> tuple[float, dict[str, float]]:
    with HealthWatch(settings) as watch:
        started = time.perf_counter()
        result = run_cli(settings, "up")
        elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"`mlops-lab up` failed:\n{result.stderr[-3000:]}")
    return elapsed, watch.first_healthy


def trees(runtime: LocalRuntime) -> dict[str, list[psutil.Process]]:
    """supervisord, and each service's whole process tree."""
    found = {"supervisord": [psutil.Process(runtime.supervisor.pid())]}
    for name, info in runtime.supervisor.process_info().items():
        if info["pid"]:
            root = psutil.Process(info["pid"])
            found[name] = [root, *root.children(recursive=True)]
    return found


def _total(processes: list[psutil.Process], read) -> float:
    total = 0.0
    for process in processes:
        try:
            total += read(process)
        except psutil.NoSuchProcess:
            continue
    return total


def rss_by_service(runtime: LocalRuntime) -> dict[str, int]:
    """Resident bytes of supervisord and of each service's whole process tree."""
    return {
        name: int(_total(processes, lambda p: p.memory_info().rss))
        for name, processes in trees(runtime).items()
    }


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def idle_cpu_by_service(runtime: LocalRuntime, seconds: float) -> dict[str, float]:
    """Percent of one core each tree used over ``seconds`` while nothing was asked of it."""
    found = trees(runtime)
    before = {name: _total(processes, _cpu_seconds) for name, processes in found.items()}
    time.sleep(seconds)
    return {
        name: 100 * (_total(processes, _cpu_seconds) - before[name]) / seconds
        for name, processes in found.items()
    }


def one_off_call_cpu_ms(url: str, calls: int = 50) -> tuple[float, float]:
    """CPU milliseconds per GET of ``url``: through platform_core.http_calls, and through
    httpx.get (a client, and its TLS context, built for each call)."""

    def per_call(get) -> float:
        get(url, timeout=5)
        started = time.process_time()
        for _ in range(calls):
            get(url, timeout=5)
        return 1000 * (time.process_time() - started) / calls

    return per_call(http_calls.get), per_call(httpx.get)


def measure(report: Report, quick: bool = False) -> None:
    settings = make_settings()
    runtime = LocalRuntime(settings)
    try:
        cold, cold_health = _timed_up(settings)
        run_cli(settings, "down")
        warm, warm_health = _timed_up(settings)
        time.sleep(5)  # let the services settle after their first requests
        usage = rss_by_service(runtime)
        idle = idle_cpu_by_service(runtime, 10.0 if quick else 30.0)
        shared, httpx_alone = one_off_call_cpu_ms(f"{settings.mlflow_url}/health")
    finally:
        run_cli(settings, "down")
        shutil.rmtree(settings.home, ignore_errors=True)
        shutil.rmtree(settings.learner_home, ignore_errors=True)

    total_mib = sum(usage.values()) / 2**20
    report.add(
        Figure(SECTION, "up -> all healthy, cold", cold, "s", "goal", GOALS["cold"], "30 s"),
        Figure(
            SECTION, "up -> all healthy, after down", warm, "s", "goal", GOALS["after down"], "20 s"
        ),
        Figure(SECTION, "RSS total", total_mib, "MiB", "goal", GOALS["rss_mib"], "1.5 GiB"),
    )
    order = [s.name for s in SERVICES]
    for name in sorted(cold_health, key=lambda n: cold_health[n]):
        report.add(
            Figure(
                SECTION,
                f"{name} healthy after (cold)",
                cold_health[name],
                "s",
                "after down",
                warm_health.get(name),
            )
        )
    for name, rss in sorted(usage.items(), key=lambda item: -item[1]):
        note = "process tree" if name in order else None
        report.add(Figure(SECTION, f"RSS {name}", rss / 2**20, "MiB", note=note))
    report.add(
        Figure(SECTION, "idle CPU total", sum(idle.values()), "% of a core", note="nothing asked")
    )
    for name, percent in sorted(idle.items(), key=lambda item: -item[1]):
        report.add(Figure(SECTION, f"idle CPU {name}", percent, "% of a core"))
    report.add(
        Figure(
            SECTION,
            "one-off HTTP call (a probe), CPU",
            shared,
            "ms",
            "httpx.get",
            httpx_alone,
            note="one TLS context a process",
        )
    )


if __name__ == "__main__":
    results.main(measure)
