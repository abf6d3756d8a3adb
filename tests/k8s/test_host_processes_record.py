"""The record of processes a Kubernetes runtime started on this machine (port-forward keepers,
the front end): a damaged one is set aside, a damaged entry left out, and the processes still
recorded are still stopped."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import sys
from pathlib import Path

import pytest

from mlops_lab.runtime.kube import host_processes
from tests.state_damage import each_damage, set_aside, warnings

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


@each_damage
def test_a_damaged_record_is_set_aside_and_names_no_process(
    tmp_path: Path, damage: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    record = tmp_path / "on-demand.json"
    record.write_bytes(damage)

    assert host_processes.running(record) == {}
    assert host_processes.stop(record) == []

    [aside] = set_aside(record)
    assert aside.read_bytes() == damage
    assert str(record) in warnings(caplog) and "pgrep" in warnings(caplog)


def test_a_bad_entry_is_left_out_and_the_recorded_process_still_stopped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    record = tmp_path / "port-forwards.json"
    pid = host_processes.start(record, "sleeper", SLEEPER, tmp_path / "sleeper.log")
    try:
        entries = json.loads(record.read_text())
        original = json.dumps({**entries, "serving": [4242], "mlflow": "soon"})
        record.write_text(original)

        assert host_processes.stop(record, grace_s=5.0) == ["sleeper"]

        assert not host_processes.alive(pid)
        said = warnings(caplog)
        assert "'serving', 'mlflow'" in said and str(record) in said
        [aside] = set_aside(record)
        assert aside.read_text() == original and aside.name in said
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_the_record_is_written_private_and_whole(tmp_path: Path) -> None:
    record = tmp_path / "kube" / "on-demand.json"
    pid = host_processes.start(record, "sleeper", SLEEPER, tmp_path / "sleeper.log")
    try:
        assert stat.S_IMODE(record.stat().st_mode) == 0o600
        assert [p.name for p in record.parent.iterdir()] == ["on-demand.json"]
    finally:
        os.kill(pid, signal.SIGKILL)
