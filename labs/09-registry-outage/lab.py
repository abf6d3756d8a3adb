"""Lab 09: a housekeeping job moves MLflow's store aside and leaves something in its place that
SQLite cannot open, so MLflow does not start.

The variants vary the job, where it put the real store and what it left: a file that is not a
database (SQLite: "file is not a database"), a copy cut off after its first page ("database
disk image is malformed"), or an empty folder under the store's name ("unable to open database
file"). Each says something different in MLflow's log, and the real store is somewhere else.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from mlops_lab.lab_engine.kit import Condition, LabContext, variant_of
from mlops_lab.lab_engine.progress import LabProgress

SERVICE = "mlflow"
# The job, where it put the store (under MLflow's folder), what it left, what SQLite then says.
VARIANTS = (
    {
        "job": "disk cleanup",
        "aside": "mlflow.db.moved-by-disk-cleanup",
        "left": "a marker file that is not a database",
        "sqlite": "file is not a database",
    },
    {
        "job": "nightly compaction",
        "aside": "mlflow.db.pre-compaction",
        "left": "its compacted copy, cut off after the first page (the disk filled up)",
        "sqlite": "database disk image is malformed",
    },
    {
        "job": "volume migration",
        "aside": "migrated/mlflow.db",
        "left": "an empty folder under the store's name (the new volume's mount point)",
        "sqlite": "unable to open database file",
    },
)
# SQLite's page size for a store MLflow creates: a copy cut after it keeps the header only.
FIRST_PAGE = 4096


def _store(ctx: LabContext) -> Path:
    return ctx.settings.paths.mlflow_store


def _aside(ctx: LabContext, variant: dict) -> Path:
    return ctx.settings.paths.mlflow / variant["aside"]


def _leave_in_place(ctx: LabContext, variant: dict, aside: Path) -> None:
    """What the job left where the store was."""
    store = _store(ctx)
    if variant["job"] == "disk cleanup":
        store.write_bytes(b"disk cleanup: archived\n" * 64)
    elif variant["job"] == "nightly compaction":
        with aside.open("rb") as real:
            store.write_bytes(real.read(FIRST_PAGE))
    else:
        store.mkdir()


def _put_back(ctx: LabContext, aside: Path) -> None:
    """MLflow stopped, whatever is in the store's place removed, the real store back."""
    ctx.runtime.stop(SERVICE)
    store = _store(ctx)
    if store.is_dir():
        shutil.rmtree(store)
    aside.replace(store)


def start(ctx: LabContext, variant: dict) -> dict:
    inventory = ctx.version_inventory()
    ctx.runtime.stop(SERVICE)
    aside = _aside(ctx, variant)
    aside.parent.mkdir(parents=True, exist_ok=True)
    _store(ctx).replace(aside)
    _leave_in_place(ctx, variant, aside)
    ctx.runtime.start(SERVICE)
    ctx.say(
        '[bold]Lab 09.[/] Alert: TargetDown (job=mlflow). Data science: "`make train` fails '
        "with 'MLflow is not reachable'. Are our models gone?\""
    )
    return {"inventory": inventory}


def check(ctx: LabContext, progress: LabProgress) -> list[Condition]:
    since = progress.require_started_at()
    healthy = ctx.mlflow_healthy()
    before: dict[str, dict] = progress.state["inventory"]
    now = ctx.version_inventory() if healthy else {}
    missing = ctx.versions_lost(before, now)
    new_versions = [
        v
        for v in now
        if v not in before
        and ctx.mlflow.get_model_version(ctx.settings.model_name, v).creation_timestamp / 1000
        > since
    ]
    champion = ctx.settings.champion_alias
    was = next((v for v, found in before.items() if champion in found["aliases"]), None)
    is_now = next((v for v, found in now.items() if champion in found["aliases"]), None)
    # A version trained after the outage may win the gate: the alias moved for a good reason.
    moved = healthy and is_now != was and is_now not in new_versions
    return [
        ctx.mlflow_answers(healthy),
        Condition.of(
            "every version from before the outage is there",
            healthy and not missing,
            f"all {len(before)} versions are back",
            f"missing versions (or another run under the same number): "
            f"{', '.join('v' + v for v in missing)}"
            if healthy
            else "cannot tell while MLflow is down",
        ),
        Condition.of(
            "the champion is where it was",
            healthy and not missing and not moved,
            f"the champion is v{is_now}"
            + ("" if is_now == was else ", promoted by the gate after the outage"),
            f"the champion was v{was} before the outage and is {'v' + is_now if is_now else 'gone'}"
            " now"
            if healthy
            else "cannot tell while MLflow is down",
        ),
        ctx.serving_reaches_registry(),
        Condition.of(
            "a training run succeeds",
            bool(new_versions),
            f"v{new_versions[-1] if new_versions else ''} was registered after the outage began",
            "no version registered since the outage began: run `make train` once MLflow is back",
        ),
    ]


def hints(ctx: LabContext, progress: LabProgress) -> list[str]:
    state = ctx.process(SERVICE).state
    last = " | ".join(line.strip() for line in ctx.runtime.log_tail(SERVICE, 40) if "rror" in line)
    return [
        "Customers first: is serving still answering? Look at `serving_registry_reachable` and "
        "`mlops-lab logs serving`. Then: why does MLflow not answer?",
        f"MLflow is {state}. The errors in its log: {last[-500:] or '(none yet)'}",
        f"MLflow keeps its runs and registry in a SQLite file under {ctx.settings.paths.mlflow}. "
        "What is in that folder now?",
        "Put the real store back in place of what is there now (MLflow must not run "
        "meanwhile), then `mlops-lab restart mlflow`, then `make train`.",
    ]


def solve(ctx: LabContext, progress: LabProgress) -> None:
    aside = _aside(ctx, variant_of(VARIANTS, progress.state))
    if aside.exists():
        _put_back(ctx, aside)
    ctx.restart(SERVICE)
    from mlops_lab.lab_engine.golden import train_baseline

    train_baseline(ctx)


def reset(ctx: LabContext, progress: LabProgress) -> None:
    aside = _aside(ctx, variant_of(VARIANTS, progress.state))
    if aside.exists():
        _put_back(ctx, aside)
        ctx.restart(SERVICE)
    if aside.parent != ctx.settings.paths.mlflow:
        with contextlib.suppress(OSError):  # the migration's folder, when empty again
            aside.parent.rmdir()
