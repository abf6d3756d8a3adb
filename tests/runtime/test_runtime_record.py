"""The record of which runtime `up` started (`<home>/runtime.json`): a damaged one is set aside
and read as the local runtime's, so every command still runs, `clean` first of all."""

from __future__ import annotations

import stat

import pytest

from mlops_lab.runtime import selection
from mlops_lab.runtime.kube.plan import KubePaths
from mlops_lab.runtime.selection import RuntimeName
from platform_core.settings import Settings
from tests.state_damage import DAMAGE, each_damage, set_aside, warnings
from tests.support import run_cli


def test_clean_works_with_an_empty_runtime_record_and_a_garbled_process_record(
    unstarted_settings: Settings,
) -> None:
    """What a full disk leaves behind: both are read before `clean` does anything."""
    unstarted_settings.paths.ensure()
    record = unstarted_settings.home / "runtime.json"
    record.write_bytes(DAMAGE["empty"])
    on_demand = KubePaths(unstarted_settings.home).on_demand
    on_demand.parent.mkdir(parents=True)
    on_demand.write_bytes(DAMAGE["binary"])

    result = run_cli(unstarted_settings, "clean", "--yes")

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    for path in (record, on_demand):
        assert f"{path} (" in result.stderr and f"{path.name}.corrupt-" in result.stderr
    assert "Deleted" in result.stderr and not unstarted_settings.home.exists()


@each_damage
def test_a_damaged_runtime_record_is_set_aside_and_read_as_local(
    unstarted_settings: Settings, damage: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    record = unstarted_settings.home / "runtime.json"
    record.write_bytes(damage)

    assert selection.active(unstarted_settings) is RuntimeName.local

    assert [p.read_bytes() for p in set_aside(record)] == [damage]
    assert str(record) in warnings(caplog) and "--runtime kind" in warnings(caplog)


def test_a_runtime_record_naming_no_runtime_is_set_aside(
    unstarted_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    record = unstarted_settings.home / "runtime.json"
    record.write_text('{"runtime": "nomad"}')

    assert selection.active(unstarted_settings) is RuntimeName.local
    assert len(set_aside(record)) == 1 and "not a record `up` writes" in warnings(caplog)


def test_the_runtime_record_is_written_private_and_whole(unstarted_settings: Settings) -> None:
    selection.record(unstarted_settings, RuntimeName.kind, kubeconfig="/k/config")

    record = unstarted_settings.home / "runtime.json"
    assert selection.recorded(unstarted_settings) == {"runtime": "kind", "kubeconfig": "/k/config"}
    assert stat.S_IMODE(record.stat().st_mode) == 0o600
    assert [p.name for p in unstarted_settings.home.iterdir()] == ["runtime.json"]
