"""Platform lifecycle commands: up, down, status, logs, clean."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mlops_lab.cli.output import done, err, out
from mlops_lab.runtime import selection
from mlops_lab.runtime.base import ServiceStatus, tail
from mlops_lab.runtime.current import runtime_for
from mlops_lab.runtime.kube.runtime import KubeRuntime
from mlops_lab.runtime.local.runtime import LocalRuntime
from mlops_lab.runtime.selection import RuntimeName, RuntimeUnavailable, choose
from mlops_lab.runtime.services import SERVICES
from monitoring.configs import grafana_admin_password
from platform_core import monitoring_auth
from platform_core.errors import PlatformError
from platform_core.locks import platform_lock
from platform_core.settings import Settings, get_settings

# The services that ask for the monitoring password on the local runtime.
_LOGIN_SERVICES = {s.name for s in SERVICES if s.password_protected}
_LOGIN_TITLES = " and ".join(s.title for s in SERVICES if s.password_protected)


def up(
    runtime: Annotated[
        RuntimeName,
        typer.Option(
            help="auto: the runtime already recorded in the data dir, else kind when Docker, "
            "kind, kubectl and terraform are all there, else local. kube: the cluster "
            "KUBECONFIG points at (no Terraform, no kind)."
        ),
    ] = RuntimeName.auto,
    overlay: Annotated[
        Path | None,
        typer.Option(
            help="kind/kube only: the kustomize overlay to apply (default k8s/overlays/kind)."
        ),
    ] = None,
) -> None:
    """Start the platform and wait until every service is healthy."""
    settings = get_settings()
    # Held from the choice of runtime to its record: a second `up` waits, then finds it all.
    with platform_lock(settings, lambda text: err.print(text, highlight=False)):
        _up(settings, runtime, overlay)


def _up(settings: Settings, runtime: RuntimeName, overlay: Path | None) -> None:
    active = selection.active(settings)
    if runtime is RuntimeName.auto and active is not RuntimeName.local:
        runtime = active  # a cluster platform in this data dir keeps its runtime
    try:
        choice = choose(runtime)
    except RuntimeUnavailable as error:
        raise PlatformError(str(error)) from error
    if active is not choice.runtime and _has_platform(settings, active):
        raise PlatformError(
            f"This data dir ({settings.home}) holds a platform on the {active.value} runtime.",
            hint=f"`mlops-lab clean` removes it first, or use `--runtime {active.value}`.",
        )
    err.print(f"Runtime: [bold]{choice.runtime.value}[/] ({choice.reason})", highlight=False)
    if settings.remote_access:
        err.print(
            f"[yellow]Warning:[/] the services listen on {settings.host} and have no "
            "authentication: anyone who can reach this machine can use them "
            "(allowed by MLOPS_LAB_ALLOW_REMOTE_ACCESS=true).",
            highlight=False,
        )
    # The Grafana admin password is shown by the `up` that generates it, and never again.
    password_is_new = not settings.paths.grafana_admin_password.exists()
    # The first local `up` generates the monitoring password, and says where it keeps it.
    monitoring_password_is_new = not settings.paths.monitoring_password.exists()
    if choice.runtime is RuntimeName.local:
        runtime_ = LocalRuntime(settings, console=err)
        result = runtime_.up()
        selection.record(settings, RuntimeName.local)
    else:
        runtime_ = KubeRuntime(settings, choice.runtime, console=err, overlay=overlay)
        result = runtime_.up(force=True)
    local = isinstance(runtime_, LocalRuntime)
    _print_urls(runtime_.status(), settings, password_is_new, logins=local)
    if local and monitoring_password_is_new:
        err.print(
            f"Generated the password {_LOGIN_TITLES} ask for: {monitoring_login(settings)}.",
            highlight=False,
        )
    if result.already_running:
        done("Everything is already running; nothing was changed.")
    else:
        done(f"Platform is up ({len(result.started)} services healthy in {result.seconds:.1f}s).")


def down() -> None:
    """Stop every service. Data (runs, models, flow history, metrics) is kept."""
    if runtime_for(get_settings(), console=err).down():
        done("Platform stopped; data kept. `mlops-lab up` starts it again.")
    else:
        done("Nothing was running.")


def status(
    as_json: Annotated[bool, typer.Option("--json", help="A JSON list on stdout.")] = False,
) -> None:
    """Show each service: URL, process state and health."""
    settings = get_settings()
    runtime = runtime_for(settings, console=err)
    rows = runtime.status()
    if as_json:
        out.print_json(json.dumps([row.to_dict() for row in rows]))
        return
    table = Table("Service", "URL", "State", "Health")
    table.columns[1].no_wrap = True
    for row in rows:
        health = "[green]healthy[/]" if row.healthy else f"[red]unhealthy[/] ({row.detail})"
        if row.state == "not installed":
            health = "[dim]optional[/]"
        elif row.state == "on demand":
            health = "[dim]runs while a lab does[/]"
        table.add_row(row.title, row.url, row.state, health)
    out.print(table)
    installed = [r for r in rows if r.state not in ("not installed", "on demand")]
    for row in rows:
        if row.state == "not installed":
            err.print(f"{row.title} is not installed ({row.detail}).", highlight=False)
    # A cluster's Prometheus and Alertmanager (kube-prometheus-stack) ask for no login.
    if isinstance(runtime, LocalRuntime) and settings.paths.monitoring_password.exists():
        err.print(
            f"{_LOGIN_TITLES} ask for a login: {monitoring_login(settings)}.", highlight=False
        )
    healthy = sum(r.healthy for r in installed)
    done(f"{healthy}/{len(installed)} services healthy.")


def logs(
    service: Annotated[str, typer.Argument(help="mlflow, prefect, prometheus, ... or supervisord")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines.")
    ] = False,
    lines: Annotated[int, typer.Option("--lines", "-n", help="How many lines to show.")] = 50,
) -> None:
    """Show a service's log."""
    runtime = runtime_for(get_settings(), console=err)
    if isinstance(runtime, KubeRuntime) and not runtime.runs_on_host(service):
        # kubectl streams it (and follows across container restarts of the same pod).
        argv = runtime.kubectl.argv(*runtime.log_args(service, lines, follow))
        raise typer.Exit(subprocess.run(argv, check=False).returncode)
    path = runtime.log_path(service)
    for line in tail(path, lines):
        typer.echo(line)
    if follow:
        _follow(path)


def restart(
    service: Annotated[str, typer.Argument(help="mlflow, prefect, prometheus, serving, ...")],
) -> None:
    """Render a service's configuration from the settings again and restart it (or reload)."""
    runtime = runtime_for(get_settings(), console=err)
    if not runtime.is_running():
        raise PlatformError("The platform is not running.", hint="Start it with `mlops-lab up`.")
    how = runtime.restart(service)
    if how == "reloaded":
        done(f"{service} reloaded its configuration, rendered again from the settings.")
    else:
        done(f"{service} restarted with its configuration rendered from the settings.")


def clean(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Stop everything and delete all platform data (runs, models, history, metrics)."""
    settings = get_settings()
    runtime = runtime_for(settings, console=err)
    if not yes:
        cluster = " and destroy the kind cluster" if isinstance(runtime, KubeRuntime) else ""
        typer.confirm(f"Delete {settings.home} and everything in it{cluster}?", abort=True)
    if runtime.clean():
        done(f"Deleted {settings.home}.")
    else:
        done("Nothing to delete.")


def _has_platform(settings: Settings, runtime: RuntimeName) -> bool:
    """Is there a platform of ``runtime`` in this data dir that another runtime would clash with?"""
    if runtime is RuntimeName.local:
        return LocalRuntime(settings, console=err).is_running()
    return KubeRuntime(settings, runtime, console=err).paths.root.exists()


def grafana_login(settings: Settings, created_now: bool) -> str:
    """How to log in to Grafana as admin: the password itself only when it was just created."""
    path = settings.paths.grafana_admin_password
    if created_now:
        return f"admin / {grafana_admin_password(settings)}, shown once: it is kept in {path}"
    return f"admin, password in {path}"


def monitoring_login(settings: Settings) -> str:
    """How to log in to Prometheus and Alertmanager: the user, and where the password is."""
    return f"user {monitoring_auth.USER}, password in {settings.paths.monitoring_password}"


def _print_urls(
    rows: list[ServiceStatus], settings: Settings, password_is_new: bool, logins: bool
) -> None:
    """The URL of each service; ``logins``: with the login of those that ask for one."""
    table = Table("Service", "URL", box=None)
    for row in rows:
        if row.state == "not installed":
            table.add_row(row.title, "[dim]not installed (see `mlops-lab status`)[/]")
        elif row.state == "on demand":
            table.add_row(row.title, f"{row.url}  [dim](runs while a lab does)[/]")
        elif row.name == "grafana":
            login = grafana_login(settings, password_is_new)
            table.add_row(row.title, f"{row.url}  (anonymous view; {login})")
        elif logins and row.name in _LOGIN_SERVICES:
            table.add_row(row.title, f"{row.url}  ({monitoring_login(settings)})")
        else:
            table.add_row(row.title, row.url)
    err.print(table)


def _follow(path) -> None:
    position = path.stat().st_size if path.exists() else 0
    try:
        while True:
            if path.exists():
                size = path.stat().st_size
                if size < position:  # rotated
                    position = 0
                if size > position:
                    with path.open(errors="replace") as handle:
                        handle.seek(position)
                        typer.echo(handle.read(), nl=False)
                        position = handle.tell()
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
