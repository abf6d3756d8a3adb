"""Lab 24: last night's maintenance upgraded MLflow, and the migration of its store was stopped part
way (the maintenance window's time limit). The variant says where it stopped.

Staged with MLflow's own migrations: the store is taken back three revisions with their real
``downgrade()`` functions (the store of the release before), then MLflow's own upgrade routine runs
on it and is stopped at one statement of the newest migration. On SQLite, each statement of a
migration's DDL commits as it runs (the driver opens a transaction only for data changes), so what
ran before the stop stays while the new revision is never recorded. MLflow then refuses to start,
and `mlflow db upgrade` trips over what the stopped run left: the repair is to take a verified
copy first, take back (or finish) what was left half done, and migrate again.

MLflow 3.17 migrates a store at start by itself when a table its models know is missing (its
``_all_tables_exist``); the variant that stopped after the first new table meets that: MLflow's own
migration at start fails on the table left behind.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mlops_lab.cli import backup
from mlops_lab.lab_engine.kit import Condition, LabContext, variant_of
from mlops_lab.lab_engine.progress import LabProgress

SERVICE = "mlflow"
# The store of the release before this MLflow: three migrations back. The upgrade completes the
# first two (each commits on its own) and is stopped inside the newest, NEWEST.
RELEASE_BEFORE = "17e22815139b"
NEWEST = "dc11669786a5"
JOB_LOG = "mlflow-maintenance.log"

# Where the maintenance's upgrade stopped: the statement it did not get to run, what the store was
# left with, what MLflow says at start, and the repair that fits.
VARIANTS = (
    {
        "stopped_before": "ALTER TABLE jobs ADD COLUMN executor_backend",
        "left": "the two new tables, scheduler_leases and job_locks (both empty), and none of the "
        "eight new columns of jobs",
        "says": "Detected out-of-date database schema",
        "repair": "drop the two empty tables the stopped run created, then run `mlflow db "
        "upgrade` again",
    },
    {
        "stopped_before": "CREATE TABLE job_locks",
        "left": "one new table, scheduler_leases (empty), and nothing else of the migration",
        "says": "table scheduler_leases already exists",
        "repair": "drop the empty table the stopped run created, then run `mlflow db upgrade` "
        "(or let MLflow migrate the store as it starts, once the copy is kept)",
    },
    {
        "stopped_before": f"UPDATE alembic_version SET version_num='{NEWEST}'",
        "left": "every change of the migration (both new tables, the eight columns and the "
        "indexes), and the old revision still recorded",
        "says": "Detected out-of-date database schema",
        "repair": "record the revision the store already has the shape of (`alembic stamp "
        f"{NEWEST}`, once a comparison with a store this MLflow creates shows nothing else "
        "differs), or take back all the stopped run did and run `mlflow db upgrade` again",
    },
)


class MaintenanceStopped(Exception):
    """The maintenance job's time limit, at the statement the variant names."""


# ---- the store, as SQLite and MLflow's migrations see it --------------------------------------


def store(ctx: LabContext) -> Path:
    return ctx.settings.paths.mlflow_store


def store_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _lab_dir(ctx: LabContext) -> Path:
    """The lab's own files, outside the backups folder and out of the learner's way: the store
    as the lab found it, and the shapes of fresh stores (kept: they change only with MLflow)."""
    return ctx.settings.paths.run / "lab-24"


def _at_start(ctx: LabContext) -> Path:
    """The store as it was when the lab started, for the reset."""
    return _lab_dir(ctx) / "mlflow-at-start.db"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """MLflow and alembic log each migration they run: not for `lab start` to print."""
    loggers = [logging.getLogger(name) for name in ("mlflow", "alembic")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def alembic_config(path: Path):
    """MLflow's own alembic configuration, pointed at the store ``path``."""
    from mlflow.store.db.utils import _get_alembic_config

    return _get_alembic_config(store_url(path))


def newest_revision() -> str:
    """The revision this MLflow expects (the head of its migrations)."""
    from mlflow.store.db.utils import _get_latest_schema_revision

    return _get_latest_schema_revision()


def _interrupted_upgrade(path: Path, stopped_before: str) -> None:
    """MLflow's own upgrade of the store, stopped when it is about to run ``stopped_before``."""
    import sqlalchemy
    from mlflow.store.db.utils import _upgrade_db
    from sqlalchemy import event

    def stop(_conn, _cursor, statement: str, *_args) -> None:
        if stopped_before in " ".join(statement.split()):
            raise MaintenanceStopped(stopped_before)

    engine = sqlalchemy.create_engine(store_url(path))
    event.listen(engine, "before_cursor_execute", stop)
    try:
        _upgrade_db(engine)
    except MaintenanceStopped:
        pass
    else:
        raise RuntimeError(f"the upgrade of {path} never reached {stopped_before!r}")
    finally:
        engine.dispose()


def break_store(ctx: LabContext, stopped_before: str) -> str:
    """Last night's maintenance, with MLflow stopped: the store of the release before, then an
    upgrade stopped part way. Returns the revision the store records after it."""
    from alembic import command

    ctx.runtime.stop(SERVICE)
    with _quiet():
        command.downgrade(alembic_config(store(ctx)), RELEASE_BEFORE)
        _interrupted_upgrade(store(ctx), stopped_before)
    found = backup.describe(store(ctx)).revision
    if found in (None, NEWEST):
        raise RuntimeError(f"the stopped upgrade left {store(ctx)} at revision {found}")
    return str(found)


def put_in_place(copy: Path, path: Path) -> None:
    """``copy`` becomes the store at ``path`` (MLflow stopped): no journal of the file it
    replaces may be replayed into it."""
    for suffix in ("-journal", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    shutil.copyfile(copy, path)


@dataclass(frozen=True)
class Shape:
    """A SQLite store's tables: each one's columns (name, declared type, not null) and indexes.
    Column order is left out: a column added by hand lands last, and MLflow never relies on it."""

    tables: dict[str, frozenset[tuple[str, str, bool]]]
    indexes: dict[str, frozenset[str]]

    def to_json(self) -> str:
        return json.dumps(
            {
                "tables": {t: sorted(map(list, columns)) for t, columns in self.tables.items()},
                "indexes": {t: sorted(names) for t, names in self.indexes.items()},
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Shape:
        said = json.loads(text)
        return cls(
            {
                t: frozenset((c, k, bool(n)) for c, k, n in cols)
                for t, cols in said["tables"].items()
            },
            {t: frozenset(names) for t, names in said["indexes"].items()},
        )

    def differences(self, expected: Shape) -> list[str]:
        said = []
        missing = sorted(set(expected.tables) - set(self.tables))
        extra = sorted(set(self.tables) - set(expected.tables))
        said += [f"table {t} is missing" for t in missing]
        said += [f"table {t} is not in a store this MLflow creates" for t in extra]
        for table in sorted(set(self.tables) & set(expected.tables)):
            have, want = self.tables[table], expected.tables[table]
            if have != want:
                names = {c[0] for c in have}
                lacks = sorted(c[0] for c in want - have if c[0] not in names)
                other = sorted({c[0] for c in have ^ want} - set(lacks))
                said += [f"{table} lacks column {c}" for c in lacks]
                said += [f"{table}.{c} is not as a store this MLflow creates it" for c in other]
            indexes_have, indexes_want = self.indexes[table], expected.indexes[table]
            said += [f"{table} lacks index {i}" for i in sorted(indexes_want - indexes_have)]
            said += [f"{table} has an extra index {i}" for i in sorted(indexes_have - indexes_want)]
        return said


def shape_of(path: Path) -> Shape:
    with contextlib.closing(backup.read_only(path)) as db:
        names = [
            row[0]
            for row in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                " AND name != 'alembic_version'"
            )
        ]
        tables = {
            name: frozenset(
                (column, kind.upper(), bool(notnull))
                for _cid, column, kind, notnull, _default, _pk in db.execute(
                    f'PRAGMA table_info("{name}")'
                )
            )
            for name in names
        }
        indexes = {
            name: frozenset(
                row[1]
                for row in db.execute(f'PRAGMA index_list("{name}")')
                if not row[1].startswith("sqlite_autoindex")
            )
            for name in names
        }
    return Shape(tables, indexes)


def _fresh_store(ctx: LabContext) -> Path:
    """A store this MLflow creates on an empty file (what `mlflow db upgrade` does to one), kept
    in the lab's folder: every migration it runs takes seconds, and it changes only with MLflow."""
    import mlflow
    import sqlalchemy
    from mlflow.store.db.utils import _initialize_tables

    path = _lab_dir(ctx) / f"fresh-{mlflow.__version__}.db"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as folder, _quiet():
        made = Path(folder) / path.name
        engine = sqlalchemy.create_engine(store_url(made))
        try:
            _initialize_tables(engine)
        finally:
            engine.dispose()
        made.replace(path)
    return path


def fresh_shape(ctx: LabContext, revision: str | None = None) -> Shape:
    """The shape of a store this MLflow creates, or of one taken back to ``revision`` by
    MLflow's own downgrades (computed once, then kept beside the fresh store)."""
    from alembic import command

    fresh = _fresh_store(ctx)
    cached = fresh.with_name(f"{fresh.stem}-{revision or 'newest'}.json")
    if cached.is_file():
        return Shape.from_json(cached.read_text())
    if revision is None:
        shape = shape_of(fresh)
    else:
        with tempfile.TemporaryDirectory(dir=fresh.parent) as folder, _quiet():
            older = Path(folder) / "older.db"
            shutil.copyfile(fresh, older)
            command.downgrade(alembic_config(older), revision)
            shape = shape_of(older)
    cached.write_text(shape.to_json())
    return shape


@dataclass(frozen=True)
class StoreNow:
    """The store as the check and the hints see it: its recorded revision and how it differs
    from a store this MLflow creates, or why it cannot be read."""

    revision: str | None
    differences: list[str]
    problem: str = ""

    def matches(self, expected: str) -> bool:
        return not self.problem and self.revision == expected and not self.differences

    def describe(self, expected: str, most: int = 8) -> str:
        if self.problem:
            return self.problem
        if self.revision != expected:
            said = f"the store records revision {self.revision}; this MLflow expects {expected}"
        else:
            said = f"the store records {expected}"
        if not self.differences:
            return (
                said + "; its tables, columns and indexes are those of a store this MLflow creates"
            )
        listed = "; ".join(self.differences[:most])
        more = len(self.differences) - most
        return f"{said}; unlike a store this MLflow creates: {listed}" + (
            f" (and {more} more)" if more > 0 else ""
        )


def store_now(ctx: LabContext) -> StoreNow:
    import sqlite3

    path = store(ctx)
    if not path.is_file():
        return StoreNow(None, [], f"there is no store at {path}")
    try:
        return StoreNow(
            backup.describe(path).revision, shape_of(path).differences(fresh_shape(ctx))
        )
    except sqlite3.DatabaseError as error:
        return StoreNow(None, [], f"SQLite cannot read {path}: {error}")


# ---- the registry's inventory ---------------------------------------------------------------


def _moved_aliases(before: dict[str, dict], now: dict[str, dict], since: float) -> list[str]:
    """Aliases from before that point elsewhere now, but to a version registered since the start
    (the gate may promote a model trained after the repair)."""
    was = {a: v for v, found in before.items() for a in found["aliases"]}
    is_now = {a: v for v, found in now.items() for a in found["aliases"]}
    return [
        f"@{alias} (v{version} before, {'v' + is_now[alias] if alias in is_now else 'gone'} now)"
        for alias, version in sorted(was.items())
        if is_now.get(alias) != version
        and not (alias in is_now and now[is_now[alias]]["created"] / 1000 > since)
    ]


# ---- the copies in the backups folder -------------------------------------------------------


def _judge_copy(
    copy: backup.StoreCopy, found: str, before: dict[str, dict], model: str
) -> str | None:
    """Why a copy is not the one the repair needed (None when it is)."""
    if not copy.sound:
        return f"does not pass SQLite's integrity check ({copy.integrity[:120]})"
    if copy.revision != found:
        return (
            f"records revision {copy.revision}, not {found} (the store's as the incident left it)"
        )
    held = {v.version: v for v in copy.versions if v.name == model}
    lacking = [
        f"v{number}"
        for number, version in before.items()
        if number not in held
        or (held[number].run_id, held[number].source, held[number].created)
        != (version["run_id"], version["source"], version["created"])
    ]
    if lacking:
        return f"lacks {', '.join(lacking)} as they were"
    return None


def copies_since(ctx: LabContext, since: float) -> list[Path]:
    folder = ctx.settings.paths.backups
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.stat().st_mtime >= since
    )


# ---- the lab --------------------------------------------------------------------------------


def _job_log(ctx: LabContext) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    lines = [
        "maintenance window opened (30 min): mlflow",
        "stopped mlflow",
        "installed the platform's pinned mlflow release",
        f"running: mlflow db upgrade {store_url(store(ctx))}",
        "time limit of the window reached: job stopped",
        "started mlflow",
    ]
    with (ctx.settings.paths.logs / JOB_LOG).open("a") as log:
        log.writelines(f"{stamp} {line}\n" for line in lines)


def start(ctx: LabContext, variant: dict) -> dict:
    inventory = ctx.version_inventory()
    ctx.runtime.stop(SERVICE)
    kept = _at_start(ctx)
    kept.parent.mkdir(parents=True, exist_ok=True)
    backup.copy(store(ctx), kept)
    found = break_store(ctx, variant["stopped_before"])
    _job_log(ctx)
    ctx.runtime.start(SERVICE)
    ctx.say(
        '[bold]Lab 24.[/] Alert: TargetDown (job=mlflow). Data science: "`make train` fails with '
        "'MLflow is not reachable'. Last night's maintenance window was on MLflow, and the "
        'platform team is off shift until Monday."'
    )
    # The registry as it was, and the revision the stopped upgrade left: what a copy of the store
    # must hold to be the one the repair needed.
    return {"inventory": inventory, "found": found}


def check(ctx: LabContext, progress: LabProgress) -> list[Condition]:
    since = progress.require_started_at()
    healthy = ctx.mlflow_healthy()
    before: dict[str, dict] = progress.state["inventory"]
    now = ctx.version_inventory() if healthy else {}
    missing = ctx.versions_lost(before, now)
    moved = _moved_aliases(before, now, since) if healthy else []

    expected = newest_revision()
    shape = store_now(ctx)
    shape_said = shape.describe(expected)

    found, model = progress.state["found"], ctx.settings.model_name
    judged = {
        path: _judge_copy(backup.describe(path), found, before, model)
        for path in copies_since(ctx, since)
    }
    good = [p for p, why in judged.items() if why is None]
    folder = ctx.settings.paths.backups
    return [
        ctx.mlflow_answers(healthy),
        Condition.of(
            "the store is what this MLflow expects",
            shape.matches(expected),
            shape_said,
            shape_said,
        ),
        Condition.of(
            "every version and alias from before the outage is there",
            healthy and not missing and not moved,
            f"all {len(before)} versions, as they were, and their aliases",
            (
                "missing versions (or another run under the same number): "
                + (", ".join("v" + v for v in missing) or "none")
                + "; aliases moved: "
                + (", ".join(moved) or "none")
            )
            if healthy
            else "cannot tell while MLflow is down",
        ),
        Condition.of(
            "a verified copy of the store as the incident left it is in the backups folder",
            bool(good),
            f"{good[0].name if good else ''}: sound, revision {found}, every version",
            f"nothing in {folder} taken since the incident began"
            if not judged
            else "; ".join(f"{p.name} {why}" for p, why in judged.items()),
        ),
        ctx.serving_reaches_registry(),
    ]


def hints(ctx: LabContext, progress: LabProgress) -> list[str]:
    variant = variant_of(VARIANTS, progress.state)
    answers = ctx.mlflow_healthy()
    process = "answers /health" if answers else "does not answer /health"
    said = [
        line.strip()
        for line in ctx.runtime.log_tail(SERVICE, 80)
        if any(word in line for word in ("rror", "Detected", "already exists"))
        and not line.startswith("(Background")
    ]
    job = ctx.settings.paths.logs / JOB_LOG
    job_said = " | ".join(job.read_text().splitlines()[-4:]) if job.is_file() else "(gone)"
    path = store(ctx)
    now = store_now(ctx).describe(newest_revision(), most=6)
    return [
        "Customers first: is serving still answering (`serving_registry_reachable`, "
        "`mlops-lab logs serving`)? Then: why does MLflow not start, and what did last night's "
        "maintenance do to it?",
        f"MLflow {process} (supervisord: {ctx.process(SERVICE).state}). What its log says last: "
        f"{' | '.join(said[-2:])[-600:] or '(nothing yet)'}. The maintenance job's log ({job}): "
        f"{job_said}",
        f"Before you change anything in {path}, keep a copy you have opened and checked "
        f"(`mlops-lab backup mlflow` copies it safely and says what it holds) in "
        f"{ctx.settings.paths.backups}. Now {now}. A store this MLflow creates fresh, to compare "
        "with: `mlflow db upgrade sqlite:////tmp/fresh.db`.",
        f"The stopped run left {variant['left']}. The repair: {variant['repair']}. Then "
        "`mlops-lab restart mlflow`, and watch `serving_registry_reachable` come back to 1.",
    ]


def take_back_what_was_left(ctx: LabContext, recorded: str) -> list[str]:
    """Make the store (MLflow stopped) the shape of the revision it records, ``recorded``: drop
    what the stopped migration created after it (indexes, columns, then tables, which must be
    empty). Returns what was dropped."""
    import sqlite3

    path, expected = store(ctx), fresh_shape(ctx, recorded)
    now = shape_of(path)
    dropped = []
    with contextlib.closing(sqlite3.connect(path)) as db:
        for table in sorted(now.tables):
            gone = table not in expected.tables
            for index in sorted(now.indexes[table] - expected.indexes.get(table, frozenset())):
                db.execute(f'DROP INDEX "{index}"')
                dropped.append(f"index {index}")
            if gone:
                rows = db.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
                if rows:
                    raise RuntimeError(f"{table} holds {rows} rows: not a table to drop")
                db.execute(f'DROP TABLE "{table}"')
                dropped.append(f"table {table}")
                continue
            known = {c[0] for c in expected.tables[table]}
            for column in sorted({c[0] for c in now.tables[table]} - known):
                db.execute(f'ALTER TABLE "{table}" DROP COLUMN "{column}"')
                dropped.append(f"{table}.{column}")
        db.commit()
    return dropped


def upgrade(ctx: LabContext) -> None:
    """What `mlflow db upgrade sqlite:///STORE` does to a store that is not empty, through
    MLflow's Python API (MLflow stopped): its migrations from the recorded revision on."""
    from mlflow.store.db.utils import _upgrade_db, create_sqlalchemy_engine

    engine = create_sqlalchemy_engine(store_url(store(ctx)))
    try:
        with _quiet():
            _upgrade_db(engine)
    finally:
        engine.dispose()


def await_registry_reachable(ctx: LabContext) -> None:
    def reachable() -> bool:
        found = ctx.query("serving_registry_reachable")
        return bool(found) and all(r["value"] == 1 for r in found)

    ctx.wait_until(reachable, 120, "serving to reach the registry again")


def solve(ctx: LabContext, progress: LabProgress) -> None:
    ctx.runtime.stop(SERVICE)
    backup.take(store(ctx), ctx.settings.paths.backups)
    recorded = backup.describe(store(ctx)).revision
    if recorded is not None and recorded != newest_revision():
        take_back_what_was_left(ctx, recorded)
        upgrade(ctx)
    ctx.restart(SERVICE)
    await_registry_reachable(ctx)


def back_to_the_start(ctx: LabContext) -> bool:
    """The store as it was when the lab started, in place (MLflow stopped, and left so);
    False when no copy of it was kept."""
    kept = _at_start(ctx)
    if not kept.is_file():
        return False
    ctx.runtime.stop(SERVICE)
    put_in_place(kept, store(ctx))
    return True


def _whole_and_current(ctx: LabContext, progress: LabProgress) -> bool:
    """Whether MLflow runs on a store this MLflow would create, holding every version from
    before the lab: nothing to put back (a repaired store is such a store)."""
    if not ctx.mlflow_healthy():
        return False
    if not store_now(ctx).matches(newest_revision()):
        return False
    before = progress.state.get("inventory") or {}
    try:
        now = ctx.version_inventory()
    except Exception:  # whatever MLflow makes of a store it half reads: put the start back
        return False
    return bool(before) and not ctx.versions_lost(before, now)


def reset(ctx: LabContext, progress: LabProgress) -> None:
    if not _whole_and_current(ctx, progress) and back_to_the_start(ctx):
        ctx.restart(SERVICE)
    _at_start(ctx).unlink(missing_ok=True)
    started = progress.state.get("started_at")
    if started is not None:
        for copy in copies_since(ctx, float(started)):
            copy.unlink()
    (ctx.settings.paths.logs / JOB_LOG).unlink(missing_ok=True)
