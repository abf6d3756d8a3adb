"""`mlops-lab drift check` as a learner runs it, against the test platform's MLflow."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pipelines import data
from platform_core import contract, prediction_log
from platform_core.settings import Settings
from tests.models import register_champion
from tests.monitoring.conftest import isolated
from tests.support import log_predictions, run_cli


@pytest.fixture(scope="module")
def unit_bug(platform: Settings, tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Path]:
    settings = isolated(platform, tmp_path_factory.mktemp("cli"))
    champion = register_champion(settings)
    engine = prediction_log.connect(settings.prediction_log_db_url)
    log_predictions(
        engine, settings.model_name, data.generate(300, "unit_bug", seed=21), champion.version
    )
    return settings, settings.home / "report.html"


@pytest.fixture(scope="module")
def checked(unit_bug: tuple[Settings, Path]) -> subprocess.CompletedProcess[str]:
    settings, html = unit_bug
    return run_cli(settings, "drift", "check", "--html", str(html), timeout=300)


def test_prints_one_row_per_feature_with_its_verdict(
    checked: subprocess.CompletedProcess[str],
) -> None:
    assert checked.returncode == 0, checked.stderr
    rows = {line.split("│")[1].strip(): line for line in checked.stdout.splitlines() if "│" in line}
    assert set(data.FEATURE_NAMES) <= set(rows)
    assert "yes (wasserstein" in rows["annual_income"]
    assert all(" no " in rows[name] for name in data.FEATURE_NAMES if name != "annual_income")


def test_ends_with_the_dataset_verdict(checked: subprocess.CompletedProcess[str]) -> None:
    last = checked.stderr.strip().splitlines()[-1]
    assert last.startswith("✓ No dataset drift: 1/10 features drifted")


def test_saves_evidently_html_report(
    checked: subprocess.CompletedProcess[str], unit_bug: tuple[Settings, Path]
) -> None:
    _settings, html = unit_bug
    assert checked.returncode == 0
    text = html.read_text()
    assert text.lstrip().lower().startswith("<!doctype html") or "<html" in text[:500]
    assert "annual_income" in text


def test_without_a_champion_says_what_to_do(own: Settings) -> None:
    result = run_cli(own, "drift", "check", timeout=300)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"No model version of '{own.model_name}'" in result.stderr
    assert "mlops-lab train" in result.stderr


def test_against_a_version_not_in_the_registry_says_which_there_are(
    unit_bug: tuple[Settings, Path],
) -> None:
    settings, _html = unit_bug
    result = run_cli(settings, "drift", "check", "--version", "404", timeout=300)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "no version '404'" in result.stderr
    assert "mlops-lab model list" in result.stderr


def test_against_a_named_version_says_which(unit_bug: tuple[Settings, Path]) -> None:
    settings, _html = unit_bug
    champion = contract.champion(contract.client_for(settings), settings)
    assert champion is not None
    result = run_cli(settings, "drift", "check", "--version", champion.version, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"vs v{champion.version}." in result.stderr
    assert "rollout status" in result.stderr
