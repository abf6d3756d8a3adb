"""`mlops-lab backup mlflow`: MLflow's store copied with SQLite's online backup API into the data
dir's backups folder, then opened and verified; consistent while a writer holds the store."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_lab.cli import backup
from platform_core.settings import Settings
from tests.support import make_settings, remove_platform_files, run_cli

MODEL = "credit-default"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A data dir whose MLflow store MLflow made: three versions of one model, the second
    deleted since."""
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

    settings = make_settings(home=tmp_path_factory.mktemp("backup"))
    store = settings.paths.mlflow_store
    store.parent.mkdir(parents=True)
    registry = SqlAlchemyStore(f"sqlite:///{store}")
    registry.create_registered_model(MODEL)
    for run in ("a" * 32, "b" * 32, "c" * 32):
        registry.create_model_version(MODEL, f"mlflow-artifacts:/0/{run}/artifacts/model", run)
    registry.delete_model_version(MODEL, "2")
    registry.engine.dispose()
    yield settings
    remove_platform_files(settings)


def _newest_revision() -> str:
    from mlflow.store.db.utils import _get_latest_schema_revision

    return _get_latest_schema_revision()


def test_copies_the_store_into_the_backups_folder_and_says_what_the_copy_holds(
    settings: Settings,
) -> None:
    done = run_cli(settings, "backup", "mlflow", timeout=120)
    assert done.returncode == 0, done.stderr
    copy = Path(done.stdout.strip())
    assert copy.parent == settings.paths.backups and copy.suffix == ".db"
    said = " ".join(done.stderr.split())
    assert "integrity: ok" in said
    assert f"schema revision: {_newest_revision()}" in said
    assert "2 model versions of 1 registered model" in said and "models" not in said
    assert said.endswith(f"MLflow's store copied and verified: {copy}")
    held = backup.describe(copy)
    assert [v.version for v in held.versions] == ["1", "3"]
    assert held.versions == backup.describe(settings.paths.mlflow_store).versions


def test_a_copy_taken_while_a_writer_holds_the_store_has_what_was_committed(
    settings: Settings, tmp_path: Path
) -> None:
    store = settings.paths.mlflow_store
    with contextlib.closing(sqlite3.connect(store, isolation_level=None)) as writer:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE model_versions SET source = 'half-written' WHERE version = 1")
        copy = backup.take(store, tmp_path)
        writer.execute("ROLLBACK")
    held = backup.describe(copy)
    assert held.sound
    assert {v.source for v in held.versions} == {
        f"mlflow-artifacts:/0/{run}/artifacts/model" for run in ("a" * 32, "c" * 32)
    }


def test_two_copies_in_the_same_second_are_two_files(settings: Settings, tmp_path: Path) -> None:
    store = settings.paths.mlflow_store
    first, second = backup.take(store, tmp_path), backup.take(store, tmp_path)
    assert first != second and first.is_file() and second.is_file()


def test_a_file_that_is_not_a_database_is_described_as_such(tmp_path: Path) -> None:
    junk = tmp_path / "mlflow.db"
    junk.write_bytes(b"disk cleanup: archived\n" * 64)
    described = backup.describe(junk)
    assert not described.sound and "not a database" in described.integrity
    assert described.revision is None and described.versions == ()


def test_without_a_store_it_says_there_is_nothing_to_copy(tmp_path: Path) -> None:
    empty = make_settings(home=tmp_path / "home")
    done = run_cli(empty, "backup", "mlflow", timeout=120)
    assert done.returncode == 1
    assert "There is no store at" in " ".join(done.stderr.split())
    assert not empty.paths.backups.exists()
