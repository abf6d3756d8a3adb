"""Running the long external steps of the Kubernetes runtimes (terraform, image builds, kind)
with one progress line each, their output kept in a log file rather than scrolled past."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from platform_core.errors import PlatformError


@dataclass(frozen=True)
class Tool:
    name: str
    purpose: str
    install: str

    def missing(self) -> bool:
        return shutil.which(self.name) is None


KIND = Tool("kind", "creates the local cluster", "https://kind.sigs.k8s.io/docs/user/quick-start/")
KUBECTL = Tool("kubectl", "applies the manifests", "https://kubernetes.io/docs/tasks/tools/")
TERRAFORM = Tool(
    "terraform",
    "creates the cluster and kube-prometheus-stack",
    "https://developer.hashicorp.com/terraform/install",
)
DOCKER = Tool(
    "docker", "builds the images and runs kind's node", "https://docs.docker.com/engine/install/"
)


def require_tools(tools: Sequence[Tool], runtime: str) -> None:
    """Raise one error naming every missing tool, what it is for and where to get it."""
    missing = [tool for tool in tools if tool.missing()]
    if missing:
        lines = [f"{t.name} is not installed ({t.purpose}): {t.install}" for t in missing]
        raise PlatformError(
            f"The {runtime} runtime needs {', '.join(t.name for t in missing)}.\n"
            + "\n".join(lines),
            hint="Install them, or run the platform without Kubernetes: "
            "`mlops-lab up --runtime local`.",
        )


def tail_text(path: Path, lines: int = 25) -> str:
    if not path.exists():
        return ""
    return "\n".join(
        f"    {line}" for line in path.read_text(errors="replace").splitlines()[-lines:]
    )


class Steps:
    """Numbered steps, each a command whose output goes to ``log_dir/<slug>.log``."""

    def __init__(self, console: Console, log_dir: Path) -> None:
        self.console = console
        self.log_dir = log_dir

    def run(
        self,
        title: str,
        slug: str,
        commands: Sequence[Sequence[str]],
        env: Mapping[str, str] | None = None,
        timeout_s: float = 1800.0,
        fix: str = "",
    ) -> Path:
        """Run ``commands`` in order; stop at the first failure with the log's last lines."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{slug}.log"
        started = time.monotonic()
        with log.open("w") as out, self.console.status(f"{title}…"):
            for argv in commands:
                out.write(f"$ {' '.join(argv)}\n")
                out.flush()
                try:
                    code = subprocess.run(
                        list(argv),
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        env=dict(env) if env is not None else None,
                        timeout=timeout_s,
                        check=False,
                    ).returncode
                except subprocess.TimeoutExpired:
                    code = None
                if code != 0:
                    why = "timed out" if code is None else f"exited with {code}"
                    raise PlatformError(
                        f"{title} failed: `{' '.join(argv)}` {why}. Last lines of {log}:\n"
                        + tail_text(log),
                        hint=fix or "Fix what the log says, then run `mlops-lab up` again.",
                    )
        self.console.print(
            f"{title}: [green]✓[/] ({time.monotonic() - started:.0f}s, log {log})", highlight=False
        )
        return log


def capture(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """A short command's stdout (terraform output, docker inspect), stripped; raises on failure."""
    result = subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        env=dict(env) if env is not None else None,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise PlatformError(f"`{' '.join(argv)}` failed: {result.stderr.strip()[-500:]}")
    return result.stdout.strip()
