"""How long `mlops-lab up` takes (venv present) and how much memory the running platform uses.

Starts a throwaway platform on free ports in a temp dir, exactly as `make up` would, and prints:
time from `up` to every service healthy, cold (empty data dir) and warm (after `down`), and the
resident memory of each service's process tree.
"""

from __future__ import annotations

import shutil
import time

import psutil
from rich.console import Console
from rich.table import Table

from mlops_lab.runtime.local import LocalRuntime
from tests.support import make_settings, run_cli

console = Console()


def _timed_up(settings) -> float:
    started = time.perf_counter()
    result = run_cli(settings, "up")
    if result.returncode != 0:
        raise SystemExit(f"`mlops-lab up` failed:\n{result.stderr}")
    return time.perf_counter() - started


def _rss_by_service(runtime: LocalRuntime) -> dict[str, int]:
    usage: dict[str, int] = {}
    supervisor = psutil.Process(runtime.supervisor.pid())
    usage["supervisord"] = supervisor.memory_info().rss
    for name, info in runtime.supervisor.process_info().items():
        if not info["pid"]:
            continue
        root = psutil.Process(info["pid"])
        tree = [root, *root.children(recursive=True)]
        usage[name] = sum(p.memory_info().rss for p in tree if p.is_running())
    return usage


def main() -> None:
    settings = make_settings()
    runtime = LocalRuntime(settings)
    try:
        cold = _timed_up(settings)
        run_cli(settings, "down")
        warm = _timed_up(settings)
        usage = _rss_by_service(runtime)
    finally:
        run_cli(settings, "down")
        shutil.rmtree(settings.home, ignore_errors=True)

    table = Table("Process tree", "RSS (MiB)", title="Platform memory")
    for name, rss in sorted(usage.items(), key=lambda item: -item[1]):
        table.add_row(name, f"{rss / 2**20:.0f}")
    total = sum(usage.values())
    table.add_row("[bold]total[/]", f"[bold]{total / 2**20:.0f}[/]")
    console.print(table)
    console.print(f"up -> all healthy, empty data dir: [bold]{cold:.1f} s[/]")
    console.print(f"up -> all healthy, after down:     [bold]{warm:.1f} s[/]")
    console.print(f"platform RSS total:                [bold]{total / 2**20:.0f} MiB[/]")


if __name__ == "__main__":
    main()
