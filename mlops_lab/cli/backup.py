"""`mlops-lab backup mlflow`: a copy of MLflow's store, taken safely whether MLflow runs or not,
then opened and verified as a restore would need it.

The copy uses SQLite's online backup API (``sqlite3.Connection.backup``): pages are copied under
SQLite's own locks, so the copy is one consistent state of the database even while MLflow writes
to it (a `cp` of a live file can catch half a transaction, and misses a journal beside it). No
`sqlite3` command-line tool is needed. A copy nobody has opened is a hope, not a backup: the
command opens it, runs ``PRAGMA integrity_check``, reads the schema revision MLflow recorded in it
and counts the model versions it holds.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from mlops_lab.cli.output import done, err, out
from platform_core.errors import PlatformError
from platform_core.paths import private_dir
from platform_core.settings import get_settings

app = typer.Typer(
    help="Copies of the platform's stores, verified, in the data dir's backups folder.",
    no_args_is_help=True,
)

# MLflow's soft-deleted versions keep their row with this stage (MLflow's STAGE_DELETED_INTERNAL).
_DELETED = "Deleted_Internal"


@dataclass(frozen=True)
class RegisteredVersion:
    """One model version as the store holds it: what makes it that version."""

    name: str
    version: str
    run_id: str | None
    source: str | None
    created: int | None


@dataclass(frozen=True)
class StoreCopy:
    """What a copy of MLflow's store holds, read from the file itself."""

    path: Path
    size: int
    # "ok", or SQLite's first complaint (also "not a SQLite database").
    integrity: str
    # The alembic revision MLflow recorded (None: no alembic_version table).
    revision: str | None
    versions: tuple[RegisteredVersion, ...]

    @property
    def sound(self) -> bool:
        return self.integrity == "ok"


def read_only(path: Path) -> sqlite3.Connection:
    """A connection that cannot change the file, nor create it when it is missing."""
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


def copy(source: Path, target: Path) -> None:
    """``source``, a SQLite database, copied to ``target`` with the online backup API: one
    consistent state of it, even while another process writes to it."""
    partial = target.with_name(f".{target.name}.partial")
    try:
        with closing(read_only(source)) as live, closing(sqlite3.connect(partial)) as copied:
            live.backup(copied)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def take(source: Path, folder: Path) -> Path:
    """Copy the SQLite database ``source`` into ``folder``; returns the new file (named after the
    source and the UTC time, never over an earlier copy)."""
    if not source.is_file():
        raise PlatformError(
            f"There is no store at {source} to copy.",
            hint="`mlops-lab status` shows whether the platform runs on this machine; on a "
            "Kubernetes runtime MLflow's store lives in the cluster.",
        )
    private_dir(folder)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = folder / f"{source.stem}-{stamp}{source.suffix}"
    counter = 1
    while target.exists():
        counter += 1
        target = folder / f"{source.stem}-{stamp}-{counter}{source.suffix}"
    try:
        copy(source, target)
    except sqlite3.DatabaseError as error:
        raise PlatformError(
            f"SQLite could not copy {source}: {error}.",
            hint="A file SQLite cannot read is no store to back up: `mlops-lab logs mlflow` "
            "says what MLflow makes of it.",
        ) from None
    return target


def describe(path: Path) -> StoreCopy:
    """Open a copy of MLflow's store read-only and say what it holds."""
    size = path.stat().st_size
    try:
        with closing(read_only(path)) as db:
            integrity = "; ".join(row[0] for row in db.execute("PRAGMA integrity_check"))
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            revision = None
            if "alembic_version" in tables:
                found = db.execute("SELECT version_num FROM alembic_version").fetchone()
                revision = found[0] if found else None
            versions = ()
            if "model_versions" in tables:
                versions = tuple(
                    RegisteredVersion(name, str(version), run_id, source, created)
                    for name, version, run_id, source, created in db.execute(
                        "SELECT name, version, run_id, source, creation_time FROM model_versions"
                        " WHERE current_stage IS NOT ? ORDER BY name, version",
                        (_DELETED,),
                    )
                )
    except sqlite3.DatabaseError as error:
        return StoreCopy(path, size, str(error), None, ())
    return StoreCopy(path, size, integrity, revision, versions)


def _size(size: int) -> str:
    scaled, unit = float(size), "B"
    for bigger in ("KiB", "MiB", "GiB"):
        if scaled < 1024:
            break
        scaled, unit = scaled / 1024, bigger
    return f"{size} B" if unit == "B" else f"{scaled:.1f} {unit}"


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


@app.command("mlflow")
def mlflow_store_copy(
    folder: Annotated[
        Path | None,
        typer.Option(help="Where the copy goes (default: the data dir's backups folder)."),
    ] = None,
) -> None:
    """Copy MLflow's store (safe while it runs), then verify it: integrity, revision, versions."""
    settings = get_settings()
    source = settings.paths.mlflow_store
    copied = describe(take(source, folder or settings.paths.backups))
    out.print(str(copied.path), highlight=False)
    versions, models = len(copied.versions), len({v.name for v in copied.versions})
    err.print(
        f"{_size(copied.size)}; integrity: {copied.integrity}; schema revision: "
        f"{copied.revision or 'none recorded'}; {_count(versions, 'model version')} of "
        f"{_count(models, 'registered model')}",
        highlight=False,
    )
    if not copied.sound:
        raise PlatformError(
            f"The copy of {source} is not sound: {copied.integrity}.",
            hint="The store itself is damaged: keep this copy as evidence and restore from an "
            "earlier one.",
        )
    done(f"MLflow's store copied and verified: {copied.path}")
