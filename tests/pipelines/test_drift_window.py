"""The drift monitor reads a window of its own model's predictions from the shared log.

It lives with the pipeline tests because it needs only MLflow (a champion with a reference), which
this package's platform already runs; retraining's side of the same filter is in test_sources.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from monitoring.check import DriftChecker, Status
from pipelines import data
from platform_core.prediction_log import connect
from platform_core.settings import Settings
from tests.models import register_champion
from tests.support import log_predictions


def test_drift_window_is_filled_with_the_models_own_rows(fresh: Settings, tmp_path: Path) -> None:
    settings = fresh.model_copy(
        update={"prediction_log_url": SecretStr(f"sqlite:///{tmp_path / 'predictions.db'}")}
    )
    champion = register_champion(settings)
    engine = connect(settings.prediction_log_db_url)
    log_predictions(engine, settings.model_name, data.generate(250, seed=3), champion.version)
    # Newer rows of another model served from the same log: they fill a window read unfiltered.
    log_predictions(engine, "churn", data.generate(300, seed=4), "1")

    outcome = DriftChecker(settings, engine).check(window_rows=300)

    assert outcome.status == Status.OK, outcome.message
    assert outcome.window_rows == 250
