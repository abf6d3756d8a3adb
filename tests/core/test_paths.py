"""The data dir's layout: what an earlier release named otherwise is moved once, never lost."""

from __future__ import annotations

import json
import os
from pathlib import Path

from mlops_lab.runtime.current import carry_over_old_names
from mlops_lab.runtime.kube.plan import KubePaths
from tests.support import make_settings, run_cli


def test_the_front_ends_old_files_are_moved_once_to_their_new_names(tmp_path: Path) -> None:
    settings = make_settings(home=tmp_path / "data")
    old_config = settings.paths.config / "client-app.yaml"
    old_config.parent.mkdir(parents=True)
    old_config.write_text("rate_per_s: 7\n")
    (settings.paths.logs).mkdir(parents=True)
    (settings.paths.logs / "client-app.log").write_text("sent 10\n")

    moves = carry_over_old_names(settings)

    assert len(moves) == 2
    assert (settings.paths.config / "front-end.yaml").read_text() == "rate_per_s: 7\n"
    assert (settings.paths.logs / "front-end.log").read_text() == "sent 10\n"
    assert not old_config.exists()
    assert carry_over_old_names(settings) == []


def test_a_front_end_running_beside_a_cluster_keeps_being_found(tmp_path: Path) -> None:
    settings = make_settings(home=tmp_path / "data")
    record = KubePaths(settings.home).on_demand
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"client-app": [os.getpid(), 0.0]}))

    assert carry_over_old_names(settings) == [f"{record}: client-app -> front-end"]
    assert set(json.loads(record.read_text())) == {"front-end"}


def test_the_cli_says_what_it_moved(tmp_path: Path) -> None:
    settings = make_settings(home=tmp_path / "data")
    (settings.paths.config).mkdir(parents=True)
    (settings.paths.config / "client-app.yaml").write_text("rate_per_s: 7\n")
    result = run_cli(settings, "lab", "list")
    assert "Renamed since your last run:" in result.stderr and "front-end.yaml" in result.stderr
    assert "Renamed" not in run_cli(settings, "lab", "list").stderr


def test_test_settings_for_a_given_home_make_no_temp_dir(tmp_path: Path, monkeypatch) -> None:
    # Each made one anyway and left it behind, empty, in /tmp (four a suite run).
    from tests import support

    def no_temp_dir() -> Path:
        raise AssertionError("a temp dir made beside the home given")

    monkeypatch.setattr(support, "temp_home", no_temp_dir)
    settings = make_settings(home=tmp_path / "data")
    assert settings.learner_home == tmp_path / "data-learner"
